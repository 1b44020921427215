"""`Occupancy`: how many callers are using one generation of a swappable resource.

Every generation of a hot-swapped resource (`secretswap.Generation`) counts its users:
a caller enters before it starts waiting for the resource and leaves when
it is done, so "idle" means nobody holds it and nobody is queued on it. The old
generation is closed only once idle (or after the drain timeout).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["Occupancy"]


@dataclass(eq=False)
class Occupancy:
    """A user count with an event set whenever it is zero."""

    users: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.users == 0:
            self.idle.set()

    def enter(self) -> None:
        self.users += 1
        self.idle.clear()

    def leave(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """True once idle; False when `timeout_s` passed with users left."""
        try:
            await asyncio.wait_for(self.idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
