"""The runtime survives an exception kb-mcp has never heard of, raised under its pool."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from typing import Any

import asyncpg
from secretswap import HotSwapEvent

from kb_mcp.runtime.supervisor import boot_runtime
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_password
from tests.support.runtime_env import RuntimeEnv


class DriverHiccup(Exception):
    """A third-party error class: neither ours nor asyncpg's nor the OS's."""


class _Rounds:
    """An observer: awaitable counts of refresher rounds (`poll`) and swaps."""

    def __init__(self) -> None:
        self.tally: Tally[str] = Tally()
        self._changed = asyncio.Event()

    def __call__(self, event: HotSwapEvent) -> None:
        self.tally[event.kind] += 1
        self._changed.set()

    async def reach(self, kind: str, count: int) -> None:
        while self.tally[kind] < count:
            self._changed.clear()
            await self._changed.wait()


async def test_a_foreign_exception_in_a_rotation_leaves_the_runtime_serving(
    env: RuntimeEnv, captured_logs: CapturedLogs
) -> None:
    """The new pool's connection init raises a foreign error: old pool serves, the refresher
    (run as `serve` runs it) goes on, the next good version swaps in."""
    refuse_role: list[str] = []

    async def pool_init(conn: asyncpg.Connection[Any]) -> None:
        if await conn.fetchval("SELECT session_user") in refuse_role:
            raise DriverHiccup(f"postgresql://x:{fake_password()}@db failed")

    rounds = _Rounds()
    async with (
        boot_runtime(env.settings(), pool_init=pool_init, observers=(rounds,)) as runtime,
        asyncio.TaskGroup() as tasks,
    ):
        refresher = tasks.create_task(runtime.refresher.run(runtime.stop))
        before = runtime.pool.version_id
        refuse_role.append(env.app.user_b)
        bad = await env.rotate_postgres()
        runtime.refresher.trigger()
        await rounds.reach("poll", 1)
        runtime.refresher.trigger()
        await rounds.reach("poll", 2)  # the failed round ended; the loop lives
        assert not refresher.done()
        assert runtime.pool.version_id == before
        assert await runtime.pool.fetchval("SELECT 1") == 1
        assert runtime.metrics.total("RotationFailures") >= 1
        failed = captured_logs.events("secret.rotation_failed")[0]
        assert (failed["version_id"], failed["error"]) == (bad, "RotationError")
        assert failed["cause"] == "DriverHiccup"
        assert [r.version_id for r in runtime.refresher.rejected()] == [bad]

        good = await env.rotate_postgres()  # back to role a, freshly re-passworded
        while runtime.pool.version_id != good:
            runtime.refresher.trigger()
            await rounds.reach("poll", rounds.tally["poll"] + 1)
        assert await runtime.pool.fetchval("SELECT session_user") == env.app.user_a
        assert runtime.refresher.rejected() == []
        runtime.stop.set()
    assert refresher.result() is None
