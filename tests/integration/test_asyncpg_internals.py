"""The asyncpg internals `kb_mcp.db.asyncpg_internals` relies on, checked on a real pool:
an asyncpg upgrade that renames or changes them fails here, not in a fleet rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from kb_mcp.db import asyncpg_internals
from tests.plugins.servers import AppDatabase
from tests.support.runtime_env import wait_until


@pytest.fixture
async def pool(app_database: AppDatabase) -> AsyncIterator[asyncpg.Pool[Any]]:
    user, password = app_database.credentials()
    opened: asyncpg.Pool[Any] = await asyncpg.create_pool(
        host=app_database.host,
        port=app_database.port,
        user=user,
        password=password,
        database=app_database.database,
        min_size=2,
        max_size=3,
    )
    try:
        yield opened
    finally:
        await opened.close()


def _floor(pool: asyncpg.Pool[Any]) -> object:
    """asyncpg's own attribute, read directly: what `set_floor` writes."""
    return pool._minsize  # type: ignore[attr-defined]  # the internal under test


def _connected(pool: asyncpg.Pool[Any]) -> list[asyncpg_internals.Holder]:
    return [h for h in asyncpg_internals.holders(pool) if h.is_connected()]


async def test_the_private_attributes_exist_with_their_types(pool: asyncpg.Pool[Any]) -> None:
    """`_minsize` is the int floor, `_holders` a list of every slot, the refill a method."""
    assert type(_floor(pool)) is int
    assert _floor(pool) == 2
    slots = asyncpg_internals.holders(pool)
    assert isinstance(slots, list)
    assert len(slots) == 3  # one holder per max_size slot, connected or not
    assert all(isinstance(h, asyncpg.pool.PoolConnectionHolder) for h in slots)
    assert callable(getattr(pool, "_schedule_min_size_maintenance", None))


async def test_holders_tell_idle_from_busy(pool: asyncpg.Pool[Any]) -> None:
    """A connected holder is idle until acquired, busy while held, idle again after."""
    assert len(_connected(pool)) == 2
    assert all(h.is_idle() for h in _connected(pool))
    async with pool.acquire():
        assert sum(not h.is_idle() for h in _connected(pool)) == 1
    assert all(h.is_idle() for h in _connected(pool))


async def test_terminating_an_idle_holder_shrinks_the_pool_at_once(
    pool: asyncpg.Pool[Any],
) -> None:
    """With the floor at zero, `terminate()` on an idle holder closes it synchronously."""
    asyncpg_internals.set_floor(pool, 0)
    assert _floor(pool) == 0
    _connected(pool)[0].terminate()
    assert pool.get_size() == 1
    async with pool.acquire() as conn:  # the pool still serves
        assert await conn.fetchval("SELECT 1") == 1


async def test_refill_to_floor_reopens_the_missing_connections(pool: asyncpg.Pool[Any]) -> None:
    """A floor raised above the pool's size is reached by asyncpg's own maintenance task."""
    asyncpg_internals.set_floor(pool, 0)
    for holder in _connected(pool):
        holder.terminate()
    assert pool.get_size() == 0
    asyncpg_internals.set_floor(pool, 2)
    asyncpg_internals.refill_to_floor(pool)
    await wait_until(lambda: pool.get_size() == 2, timeout_s=10.0, what="the floor refilled")
