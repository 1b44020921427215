"""A silent database detected in seconds: TCP keepalives and `TCP_USER_TIMEOUT` per connection.

asyncpg has no libpq-style `keepalives_*`/`tcp_user_timeout` connection parameters
(MagicStack/asyncpg#606, open; its maintainers point at the transport's socket), and
`server_settings` only reaches the server's side. So every connection the pool opens gets
its socket options set here, from the pool's `init` (`with_socket_options`), before the
application's own `init` runs:

- `SO_KEEPALIVE` with `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT`: an idle connection to a
  host that vanished (a network black hole, a failed-over instance) is found dead after
  idle + interval x count seconds instead of the kernel's two hours;
- `TCP_USER_TIMEOUT`: data sent and not acknowledged for that long (a query sent into a
  black hole) closes the connection, instead of ~15 minutes of retransmissions.

Neither sees a database that is *paused* (SIGSTOP, a frozen VM host's process): its kernel
still acknowledges. That case is bounded by the request's deadline (`kb_mcp.deadline`).
A connection over a Unix socket has no TCP options; it is left as it is.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg

__all__ = ["SocketOptions", "apply_socket_options", "with_socket_options"]

InitConnection: TypeAlias = "Callable[[asyncpg.Connection[Any]], Awaitable[None]]"


@dataclass(frozen=True, slots=True)
class SocketOptions:
    """The keepalive and user-timeout settings of a database connection's socket."""

    user_timeout_s: float = 10.0
    """Unacknowledged data for this long closes the connection."""
    idle_s: int = 5
    interval_s: int = 2
    count: int = 3

    def pairs(self) -> list[tuple[int, int, int]]:
        """(level, option, value) for `setsockopt`, those this platform has."""
        wanted = [
            (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
            (socket.IPPROTO_TCP, "TCP_KEEPIDLE", self.idle_s),
            (socket.IPPROTO_TCP, "TCP_KEEPINTVL", self.interval_s),
            (socket.IPPROTO_TCP, "TCP_KEEPCNT", self.count),
            (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", int(self.user_timeout_s * 1000)),
        ]
        return [
            (level, getattr(socket, name), value)
            for level, name, value in wanted
            if hasattr(socket, name)
        ]


def apply_socket_options(conn: asyncpg.Connection[Any], options: SocketOptions) -> bool:
    """Set `options` on `conn`'s TCP socket; False when it has none (a Unix socket)."""
    transport = conn._transport  # type: ignore[attr-defined]  # asyncpg's; no public accessor
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    for level, option, value in options.pairs():
        sock.setsockopt(level, option, value)
    return True


def with_socket_options(init: InitConnection | None, options: SocketOptions) -> InitConnection:
    """A pool `init` that sets `options` on each new connection, then runs `init`."""

    async def initialise(conn: asyncpg.Connection[Any]) -> None:
        apply_socket_options(conn, options)
        if init is not None:
            await init(conn)

    return initialise
