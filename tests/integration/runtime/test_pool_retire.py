"""A swap releases the old pool's idle connections at once; work held across it finishes."""

from __future__ import annotations

import asyncio
import time

from secretswap import HotSwapEvent

from kb_mcp.runtime.supervisor import boot_runtime
from tests.support import pg_roles
from tests.support.runtime_env import RuntimeEnv


class _PoolEvents:
    """An observer: the pool's `swapped` and `closed` events, awaitable by version."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.swapped: asyncio.Future[HotSwapEvent] = loop.create_future()
        self.closed: asyncio.Future[HotSwapEvent] = loop.create_future()

    def __call__(self, event: HotSwapEvent) -> None:
        if event.resource != "db.pool":
            return
        if event.kind == "swapped" and not self.swapped.done():
            self.swapped.set_result(event)
        elif event.kind == "closed" and not self.closed.done():
            self.closed.set_result(event)


async def _backends_until(env: RuntimeEnv, role: str, at_most: int, timeout_s: float) -> int:
    """Old-role backends in pg_stat_activity once at most `at_most` (a backend exits on its
    own schedule after its socket closes: the server's state, read until it agrees)."""
    user = env.app.user_a if role == "a" else env.app.user_b
    deadline = time.monotonic() + timeout_s
    while True:
        count = await pg_roles.connection_count(env.pg, user=user, database=env.app.database)
        if count <= at_most or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.01)


async def test_swap_closes_idle_old_connections_and_lets_held_work_finish(
    env: RuntimeEnv,
) -> None:
    """Right after the swap event the old role keeps only the connection in use; that
    connection's query still succeeds on the old role; the drain then closes it."""
    events = _PoolEvents()
    settings = env.settings(db_pool_min_size=1, db_pool_max_size=4, drain_timeout_s=30.0)
    async with boot_runtime(settings, observers=(events,)) as runtime:
        gate, all_in, inside = asyncio.Event(), asyncio.Event(), [0]

        async def hold_one() -> None:
            async with runtime.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
                inside[0] += 1
                if inside[0] == 4:
                    all_in.set()
                await gate.wait()

        async with asyncio.TaskGroup() as warm:  # four connections open in the old pool
            for _ in range(4):
                warm.create_task(hold_one())
            await asyncio.wait_for(all_in.wait(), 30.0)
            gate.set()
        assert (await env.connections())["a"] == 4

        async with runtime.pool.acquire() as held:  # one connection in use across the swap
            version = await env.rotate_postgres()
            refresh = asyncio.ensure_future(runtime.refresher.refresh_one(env.postgres_secret))
            swapped = await asyncio.wait_for(events.swapped, 30.0)
            assert swapped.version_id == version
            assert await _backends_until(env, "a", at_most=1, timeout_s=2.0) == 1
            assert await held.fetchval("SELECT session_user") == env.app.user_a
            assert runtime.pool.draining == 1
        assert await refresh

        closed = await asyncio.wait_for(events.closed, 30.0)
        assert closed.version_id != version
        assert await _backends_until(env, "a", at_most=0, timeout_s=2.0) == 0
        assert await runtime.pool.fetchval("SELECT session_user") == env.app.user_b
        assert (await env.connections())["b"] <= settings.db_pool_min_size + 1
