"""The asyncpg internals kb-mcp relies on, in one place (asyncpg 0.32).

asyncpg has no public way to change a pool's `min_size` after it is created, to refill it
to that floor, or to list its connections; the pool's shedding on rotation
(`kb_mcp.db.pool`) needs all three. Each is read from asyncpg's `pool.py`:

- `Pool._minsize` (int): the floor the pool's maintenance task keeps open;
- `Pool._schedule_min_size_maintenance()`: starts that task when the pool is below it;
- `Pool._holders` (list of `PoolConnectionHolder`): every slot of the pool, connected or
  not; a holder's `is_connected()`, `is_idle()` (no `_in_use` future) and synchronous
  `terminate()` are public methods of that private class.

`tests/integration/db/test_asyncpg_internals.py` checks them on a real pool: an asyncpg
upgrade that changes any of them fails there, not in a fleet rotation.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

__all__ = ["Holder", "holders", "refill_to_floor", "set_floor"]

Holder: TypeAlias = "asyncpg.pool.PoolConnectionHolder[Any]"


def set_floor(pool: asyncpg.Pool[Any], min_size: int) -> None:
    """Set the pool's `min_size` (0: its maintenance task reopens nothing)."""
    pool._minsize = min_size  # type: ignore[attr-defined]  # asyncpg's floor; no public setter


def refill_to_floor(pool: asyncpg.Pool[Any]) -> None:
    """Let asyncpg open, in the background, the connections missing below the floor."""
    pool._schedule_min_size_maintenance()  # type: ignore[attr-defined]  # its own refill


def holders(pool: asyncpg.Pool[Any]) -> list[Holder]:
    """Every connection slot of the pool (`is_connected()`, `is_idle()`, `terminate()`)."""
    slots: list[Holder] = pool._holders  # type: ignore[attr-defined]  # no public list
    return slots
