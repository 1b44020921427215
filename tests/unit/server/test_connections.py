"""`pick_idle_victim`: which connection makes room at the cap."""

from __future__ import annotations

from dataclasses import dataclass

from kb_mcp.server.connections import pick_idle_victim
from kb_mcp.server.limits import HttpLimits


@dataclass(eq=False)
class Conn:
    peer: str
    kb_serial: int
    idle: bool = True
    closing: bool = False

    @property
    def client(self) -> tuple[str, int]:
        return (self.peer, 40000 + self.kb_serial)

    def kb_idle(self) -> bool:
        return self.idle

    def kb_closing(self) -> bool:
        return self.closing


def test_the_oldest_idle_connection_of_the_biggest_peer_goes() -> None:
    """The peer holding the most connections loses its oldest idle one."""
    small = [Conn("10.0.0.2", 0), Conn("10.0.0.2", 1)]
    big = [Conn("10.0.0.1", 2, idle=False), Conn("10.0.0.1", 3), Conn("10.0.0.1", 4)]
    newcomer = Conn("10.0.0.2", 5)
    assert pick_idle_victim([*small, *big, newcomer], newcomer) is big[1]


def test_a_newcomer_from_the_biggest_peer_evicts_its_own_peers_oldest() -> None:
    """A newcomer is never its own victim, even from the peer holding the most."""
    held = [Conn("10.0.0.1", i) for i in range(3)]
    newcomer = Conn("10.0.0.1", 3)
    assert pick_idle_victim([newcomer, *held], newcomer) is held[0]


def test_busy_and_closing_connections_are_never_chosen() -> None:
    """No idle connection (busy or already closing): None, and the newcomer is refused."""
    conns = [Conn("10.0.0.1", 0, idle=False), Conn("10.0.0.1", 1, closing=True)]
    newcomer = Conn("10.0.0.3", 2)
    assert pick_idle_victim([*conns, newcomer], newcomer) is None


def test_a_peer_with_only_busy_connections_leaves_room_to_the_next_biggest() -> None:
    """The biggest peer's connections all busy: the next peer's oldest idle one goes."""
    busy = [Conn("10.0.0.1", i, idle=False) for i in range(4)]
    other = [Conn("10.0.0.2", 4), Conn("10.0.0.2", 5)]
    newcomer = Conn("10.0.0.3", 6)
    assert pick_idle_victim([*busy, *other, newcomer], newcomer) is other[0]


def test_uvicorns_own_503_backstop_sits_above_the_cap() -> None:
    """Connections closed to make room linger in uvicorn's count: its 503 limit is above them."""
    limits = HttpLimits(max_connections=10)
    assert limits.uvicorn_options(object)["limit_concurrency"] > 2 * limits.max_connections
