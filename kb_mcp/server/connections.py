"""Who keeps a connection when the server is full: idle connections make room, busy ones stay.

uvicorn keeps every accepted connection until the client leaves, so the server caps them
(`HttpLimits.max_connections`, one file descriptor and a little memory each). A cap that
simply closes every newcomer once it is reached lets one peer holding idle connections
lock everyone else out: 300 idle sockets from one address made every new connection,
load balancer and ECS health checks included, reset for the 10 s of the header timeout,
again and again (issue 20). `guarded_protocol` instead makes room at the cap:

- a newcomer beyond the cap closes one *idle* connection (no request at the app: nothing
  sent yet, a request head still arriving, or a keep-alive connection between requests),
  of the peer that holds the most connections, its oldest; the newcomer is served;
- when no connection is idle (every one has a request in the app) the newcomer is closed
  at once: the server is busy, not held;
- every connection must complete a request head within `header_timeout_s` of connecting
  or of its previous response, or it is closed.

Measured with `bench/bench_edge.py` (300 idle connections from one peer, reconnecting
whenever closed): before, 0 % of health checks and tool calls from other peers were
answered; with eviction, all of them (figures in `secrets/PROOF.md`). The alternatives:
a shorter header timeout alone only shortens each lock-out (the attacker reconnects); a
separate health port keeps health checks answering but not other clients' tool calls, and
needs a second target group port; per-peer caps starve the many clients behind one load
balancer address and leave a health check from the attacker's own address (ECS's check
runs on the task's loopback) locked out; answering 503 at the cap fails health checks
just the same. Eviction costs a scan of the open connections per arrival at the cap.

Only the attacker's own idle sockets are closed under such an attack; a legitimate
keep-alive connection can be closed at the cap when its peer holds the most, which HTTP
clients already handle (a server may close an idle keep-alive connection at any time).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

import structlog

__all__ = ["guarded_protocol", "pick_idle_victim"]

log = structlog.get_logger(__name__)


class Connection(Protocol):
    """What the cap needs to know of a connection (uvicorn's protocol object, guarded)."""

    @property
    def client(self) -> tuple[str, int] | None: ...

    @property
    def kb_serial(self) -> int: ...

    def kb_idle(self) -> bool: ...

    def kb_closing(self) -> bool: ...


C = TypeVar("C", bound=Connection)


def pick_idle_victim(connections: Iterable[C], newcomer: C) -> C | None:
    """The connection to close so `newcomer` fits, or None when none is idle.

    The oldest idle connection of the peer holding the most open connections (ties: the
    peer whose idle connection is oldest); never `newcomer`, never one already closing.
    """
    open_ = [c for c in connections if c is not newcomer and not c.kb_closing()]
    held = Counter(_peer(c) for c in open_)
    idle = [c for c in open_ if c.kb_idle()]
    if not idle:
        return None
    return min(idle, key=lambda c: (-held[_peer(c)], c.kb_serial))


def _peer(connection: Connection) -> str | None:
    client = connection.client
    return client[0] if client else None


def guarded_protocol(
    base: type[Any], *, max_connections: int, header_timeout_s: float
) -> type[Any]:
    """A subclass of uvicorn's HTTP protocol `base` with a connection cap and a header timeout.

    Works with uvicorn's h11 and httptools protocols alike: it relies only on what both
    have (`connections`, `client`, `cycle`, `transport`, `loop`).
    """
    serials = itertools.count()

    class GuardedProtocol(base):  # type: ignore[misc]  # base is a runtime class
        _kb_timer: asyncio.TimerHandle | None = None
        kb_serial = 0
        refused_total = 0
        """Connections closed on arrival at the cap, none being idle (logged 1st, 101st...)."""
        evicted_total = 0
        """Idle connections closed to make room for a newcomer (logged 1st, 101st...)."""

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self.kb_serial = next(serials)
            if self._kb_over_cap() and not self._kb_make_room():
                transport.close()
                return
            self._kb_arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._kb_timer is None and self.kb_idle():
                self._kb_arm()  # bytes of a new request head: it must complete in time

        def connection_lost(self, exc: Exception | None) -> None:
            self._kb_disarm()
            super().connection_lost(exc)

        def kb_idle(self) -> bool:
            """No request at the app: none yet, a head still arriving, or between requests."""
            cycle = self.cycle
            return cycle is None or bool(cycle.response_complete)

        def kb_closing(self) -> bool:
            return bool(self.transport.is_closing())

        def _kb_over_cap(self) -> bool:
            if len(self.connections) <= max_connections:
                return False
            return sum(not c.kb_closing() for c in self.connections) > max_connections

        def _kb_make_room(self) -> bool:
            cls = type(self)
            victim = pick_idle_victim(self.connections, self)
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
                    peer=_peer(victim),
                    evicted_total=cls.evicted_total,
                )
            victim.transport.close()
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
                self.transport.close()

    GuardedProtocol.__name__ = f"Guarded{base.__name__}"
    return GuardedProtocol
