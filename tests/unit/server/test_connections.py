"""`ConnectionRoom`: which connection makes room at the cap, and its books."""

from __future__ import annotations

from dataclasses import dataclass

from kb_mcp.server.connections import ConnectionRoom
from kb_mcp.server.limits import HttpLimits


@dataclass(eq=False)
class Conn:
    peer: str
    closing: bool = False

    @property
    def client(self) -> tuple[str, int]:
        return (self.peer, 40000)

    def kb_closing(self) -> bool:
        return self.closing


def _room(*conns: Conn) -> ConnectionRoom:
    room = ConnectionRoom()
    for conn in conns:
        room.opened(conn)
    return room


def test_the_longest_idle_connection_of_the_biggest_peer_goes() -> None:
    """The peer holding the most connections loses the one idle longest; busy ones stay."""
    small = [Conn("10.0.0.2")]
    big = [Conn("10.0.0.1"), Conn("10.0.0.1"), Conn("10.0.0.1")]
    newcomer = Conn("10.0.0.2")
    room = _room(*small, *big, newcomer)
    room.busy(big[0])
    assert room.victim(newcomer) is big[1]
    room.idle(big[1])  # it served a request: now the most recently idle
    assert room.victim(newcomer) is big[2]


def test_a_newcomer_from_the_biggest_peer_evicts_its_own_peers_oldest() -> None:
    """A newcomer is never its own victim, even from the peer holding the most."""
    newcomer = Conn("10.0.0.1")
    held = [Conn("10.0.0.1") for _ in range(3)]
    room = _room(newcomer, *held)
    assert room.victim(newcomer) is held[0]


def test_busy_and_closing_connections_are_never_chosen() -> None:
    """No idle connection (busy or already closing): None, and the newcomer is refused."""
    busy, closing, newcomer = Conn("10.0.0.1"), Conn("10.0.0.1", closing=True), Conn("10.0.0.3")
    room = _room(busy, closing, newcomer)
    room.busy(busy)
    room.busy(newcomer)
    assert room.victim(newcomer) is None


def test_a_peer_with_only_busy_connections_leaves_room_to_the_next_biggest() -> None:
    """The biggest peer's connections all busy: the next peer's longest idle one goes."""
    busy = [Conn("10.0.0.1") for _ in range(4)]
    other = [Conn("10.0.0.2"), Conn("10.0.0.2")]
    newcomer = Conn("10.0.0.3")
    room = _room(*busy, *other, newcomer)
    for conn in busy:
        room.busy(conn)
    assert room.victim(newcomer) is other[0]


def test_gone_connections_leave_the_books_once() -> None:
    """Closed then lost (or lost twice) counts once; a closed connection is never chosen."""
    first, second, newcomer = Conn("10.0.0.1"), Conn("10.0.0.1"), Conn("10.0.0.2")
    room = _room(first, second, newcomer)
    room.gone(first)
    room.gone(first)
    room.idle(first)  # a late response of a closed connection does not bring it back
    assert room.open == 2
    assert room.victim(newcomer) is second
    room.gone(second)
    assert room.victim(newcomer) is None
    assert room.open == 1


def test_uvicorns_own_503_backstop_sits_above_the_cap() -> None:
    """Connections closed to make room linger in uvicorn's count: its 503 limit is above them."""
    limits = HttpLimits(max_connections=10)
    assert limits.uvicorn_options(object)["limit_concurrency"] > 2 * limits.max_connections
