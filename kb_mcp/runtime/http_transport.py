"""The streamable HTTP transport of `kb-mcp serve`: the app under uvicorn, on a socket bound here.

Imported only when serving over http (`serve.py`), so the stdio transport never loads
uvicorn's HTTP protocols and h11 (the `uvicorn` package itself comes with the MCP SDK:
`mcp` -> `sse_starlette` -> `uvicorn.main`). The socket is bound before uvicorn starts,
so port 0 gives the real port to the started handshake; uvicorn's own signal handling is
off (the supervisor owns signals).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from kb_mcp.server.limits import HttpLimits

__all__ = ["bind_socket", "http_server"]


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling (the supervisor owns signals), plus a
    callback once its sockets accept connections."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_listening()


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: any free port), not yet listening.

    IPPROTO_TCP explicitly: with protocol 0 asyncio does not set TCP_NODELAY on accepted
    connections, and keep-alive responses wait ~40 ms for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def http_server(
    app: Any, *, drain_timeout_s: float, on_listening: Callable[[], None]
) -> uvicorn.Server:
    """uvicorn serving `app`, with our limits; `on_listening` once it accepts connections.

    Run it with `server.serve(sockets=[bind_socket(...)])`; set `should_exit` to stop it
    (in-flight requests get `drain_timeout_s`).
    """
    config = uvicorn.Config(
        app,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=int(drain_timeout_s),
        access_log=False,
        # Connection cap, header/keep-alive timeouts, head size (kb_mcp.server.limits).
        **HttpLimits().uvicorn_options(H11Protocol),
    )
    return _Server(config, on_listening=on_listening)
