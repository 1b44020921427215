"""Who keeps a connection when the server is full: idle connections make room, busy ones stay.

uvicorn keeps every accepted connection until the client leaves, so the server caps them
(`HttpLimits.max_connections`, one file descriptor and a little memory each). A cap that
simply closes every newcomer once it is reached lets one peer holding idle connections
lock everyone else out: 300 idle sockets from one address made every new connection,
load balancer and ECS health checks included, reset for the 10 s of the header timeout,
again and again (issue 20). `guarded_protocol` instead makes room at the cap:

- a newcomer beyond the cap closes one *idle* connection (no request at the app: nothing
  sent yet, a request head still arriving, or a keep-alive connection between requests),
  of the peer that holds the most connections, the one idle longest; the newcomer is
  served (`ConnectionRoom` keeps the books: O(1) per event, O(peers) per choice);
- when no connection is idle (every one has a request in the app) the newcomer is closed
  at once: the server is busy, not held;
- every connection must complete a request head within `header_timeout_s` of connecting
  or of its previous response, or it is closed.

Chosen by measurement (`bench/bench_edge.py`: idle connections from one peer,
reconnecting whenever closed, against health checks and another peer's tool calls;
figures before and after in `secrets/PROOF.md`). The alternatives: a shorter header
timeout alone only shortens each lock-out (the attacker reconnects); a
separate health port keeps health checks answering but not other clients' tool calls, and
needs a second target group port; per-peer caps starve the many clients behind one load
balancer address and leave a health check from the attacker's own address (ECS's check
runs on the task's loopback) locked out; answering 503 at the cap fails health checks
just the same.

Only the attacker's own idle sockets are closed under such an attack; a legitimate
keep-alive connection can be closed at the cap when its peer holds the most, which HTTP
clients already handle (a server may close an idle keep-alive connection at any time).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Protocol

import structlog

__all__ = ["ConnectionRoom", "guarded_protocol"]

log = structlog.get_logger(__name__)


class Connection(Protocol):
    """What the room needs to know of a connection (uvicorn's protocol object, guarded)."""

    @property
    def client(self) -> tuple[str, int] | None: ...

    def kb_closing(self) -> bool: ...


class ConnectionRoom:
    """The open connections of one server by peer, and which are idle, longest idle first.

    Every update is O(1); choosing a victim costs O(peers), not O(connections): at the cap
    a flood of arrivals must not cost a scan of every connection each (a scan let accepts
    fall behind an attacker's reconnects, `secrets/PROOF.md`).
    """

    def __init__(self) -> None:
        self._held: Counter[str | None] = Counter()
        self._idle: dict[str | None, dict[Connection, None]] = {}
        self._peer_of: dict[Connection, str | None] = {}

    @property
    def open(self) -> int:
        """Connections opened and not yet closed by the room or reported lost."""
        return len(self._peer_of)

    def opened(self, conn: Connection) -> None:
        """A new connection: open, and idle (no request yet)."""
        peer = conn.client[0] if conn.client else None
        self._peer_of[conn] = peer
        self._held[peer] += 1
        self._idle.setdefault(peer, {})[conn] = None

    def busy(self, conn: Connection) -> None:
        """A request of `conn` is at the app: it cannot be chosen."""
        peer = self._peer_of.get(conn)
        if peer in self._idle:
            self._idle[peer].pop(conn, None)

    def idle(self, conn: Connection) -> None:
        """`conn` has no request at the app (again): it goes last in its peer's idle order."""
        if conn not in self._peer_of:
            return
        line = self._idle.setdefault(self._peer_of[conn], {})
        line.pop(conn, None)
        line[conn] = None

    def gone(self, conn: Connection) -> None:
        """`conn` is closed or lost (either may come first; the second is a no-op)."""
        if conn not in self._peer_of:
            return
        peer = self._peer_of.pop(conn)
        self._held[peer] -= 1
        if self._held[peer] <= 0:
            del self._held[peer]
        line = self._idle.get(peer)
        if line is not None:
            line.pop(conn, None)
            if not line:
                del self._idle[peer]

    def victim(self, newcomer: Connection) -> Connection | None:
        """The connection to close so `newcomer` fits, or None when none is idle.

        The longest idle connection of the peer holding the most open connections; never
        `newcomer`, never one already closing.
        """
        for peer in sorted(self._idle, key=lambda p: -self._held[p]):
            for conn in self._idle[peer]:
                if conn is not newcomer and not conn.kb_closing():
                    return conn
        return None


def guarded_protocol(
    base: type[Any], *, max_connections: int, header_timeout_s: float
) -> type[Any]:
    """A subclass of uvicorn's HTTP protocol `base` with a connection cap and a header timeout.

    Works with uvicorn's h11 and httptools protocols alike: it relies only on what both
    have (`connections`, `client`, `cycle`, `transport`, `loop`).
    """
    room = ConnectionRoom()

    class GuardedProtocol(base):  # type: ignore[misc]  # base is a runtime class
        _kb_timer: asyncio.TimerHandle | None = None
        refused_total = 0
        """Connections closed on arrival at the cap, none being idle (logged 1st, 101st...)."""
        evicted_total = 0
        """Idle connections closed to make room for a newcomer (logged 1st, 101st...)."""

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            room.opened(self)
            if room.open > max_connections and not self._kb_make_room():
                room.gone(self)
                transport.close()
                return
            self._kb_arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.kb_idle():
                if self._kb_timer is None:
                    self._kb_arm()  # bytes of a new request head: it must complete in time
            else:
                room.busy(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.kb_idle():  # (a pipelined request may already be at the app)
                room.idle(self)

        def connection_lost(self, exc: Exception | None) -> None:
            self._kb_disarm()
            room.gone(self)
            super().connection_lost(exc)

        def kb_idle(self) -> bool:
            """No request at the app: none yet, a head still arriving, or between requests."""
            cycle = self.cycle
            return cycle is None or bool(cycle.response_complete)

        def kb_closing(self) -> bool:
            return bool(self.transport.is_closing())

        def _kb_make_room(self) -> bool:
            cls = type(self)
            victim = room.victim(self)
            if victim is None:
                cls.refused_total += 1
                if cls.refused_total % 100 == 1:
                    log.warning(
                        "http.connection_refused",
                        reason="max_connections",
                        cap=max_connections,
                        refused_total=cls.refused_total,
                    )
                return False
            cls.evicted_total += 1
            if cls.evicted_total % 100 == 1:
                log.warning(
                    "http.connection_evicted",
                    reason="max_connections",
                    cap=max_connections,
                    peer=victim.client[0] if victim.client else None,
                    evicted_total=cls.evicted_total,
                )
            room.gone(victim)
            victim.transport.close()  # type: ignore[attr-defined]  # a GuardedProtocol
            return True

        def _kb_arm(self) -> None:
            self._kb_disarm()
            self._kb_timer = self.loop.call_later(header_timeout_s, self._kb_expire, self.cycle)

        def _kb_disarm(self) -> None:
            if self._kb_timer is not None:
                self._kb_timer.cancel()
                self._kb_timer = None

        def _kb_expire(self, cycle: object) -> None:
            self._kb_timer = None
            if self.cycle is cycle and self.kb_idle() and not self.transport.is_closing():
                log.info("http.header_timeout", timeout_s=header_timeout_s)
                room.gone(self)
                self.transport.close()

    GuardedProtocol.__name__ = f"Guarded{base.__name__}"
    return GuardedProtocol
