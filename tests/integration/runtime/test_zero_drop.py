"""Rotations under load: not one request may fail."""

from __future__ import annotations

import asyncio

from bench._workload import choose_kind, runtime_call
from kb_mcp.hotswap.load import LoadStats, run_worker
from kb_mcp.runtime.supervisor import boot_runtime
from tests.support.runtime_env import RuntimeEnv, wait_until

WORKERS = 32
ROTATIONS = 10


async def test_zero_failed_requests_across_rotations_of_both_secrets(env: RuntimeEnv) -> None:
    """32 workers see no failure while each secret rotates 10 times; old pools close; no leaks."""
    settings = env.settings(cache_ttl_s=0.25, refresh_jitter_ratio=0.1, db_pool_max_size=6)
    load = LoadStats()
    stop_load = asyncio.Event()
    stop_runtime = asyncio.Event()
    async with boot_runtime(settings) as runtime:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(runtime.refresher.run(stop_runtime))
            workers = [
                tasks.create_task(
                    run_worker(choose_kind, runtime_call(runtime), load, stop_load, seed=seed)
                )
                for seed in range(WORKERS)
            ]
            for i in range(ROTATIONS):
                pg_version = await env.rotate_postgres()
                _key, key_version = await env.rotate_openai()
                await wait_until(
                    lambda v=pg_version: runtime.pool.version_id == v,  # type: ignore[misc]
                    what=f"pool rotation {i}",
                )
                await wait_until(
                    lambda v=key_version: runtime.openai.version_id == v,  # type: ignore[misc]
                    what=f"client rotation {i}",
                )
                if len(env.keys) > 2:
                    # The overlap ends two rotations later: the oldest key stops working.
                    env.openai.revoke_key(env.keys[-3])
            stop_load.set()
            await asyncio.gather(*workers)
            stop_runtime.set()
        await wait_until(lambda: runtime.pool.draining == 0, what="old pools closed")
        await wait_until(lambda: runtime.openai.draining == 0, what="old clients closed")
        connections = await env.connections()
        inactive = "a" if env.active_role == "b" else "b"
        assert connections[inactive] == 0, "a drained pool left connections open"
        assert connections[env.active_role] <= 6
        assert runtime.metrics.total("RotationsDetected") == 2 * ROTATIONS
        assert runtime.metrics.total("RotationFailures") == 0
    assert [f"{r.kind}: {r.error}" for r in load.failures] == []
    assert len(load.succeeded) > 200
    assert {r.kind for r in load.succeeded} == {"short", "long", "transaction", "embedding"}
    assert sum((await env.connections()).values()) == 0, "connections leaked after shutdown"


async def test_saturated_pool_with_queued_acquirers_loses_none_during_swap(env: RuntimeEnv) -> None:
    """With every connection busy and callers queued, a swap loses none of them."""
    settings = env.settings(db_pool_min_size=1, db_pool_max_size=2)
    async with boot_runtime(settings) as runtime:
        started = asyncio.Event()
        holding = 0

        async def hold() -> int:
            nonlocal holding
            async with runtime.pool.acquire() as conn:
                holding += 1
                if holding >= 2:
                    started.set()
                return int(await conn.fetchval("SELECT 1 FROM pg_sleep(0.1)"))

        callers = [asyncio.create_task(hold()) for _ in range(40)]
        await started.wait()
        version = await env.rotate_postgres()
        assert await runtime.refresher.refresh_one(env.postgres_secret)
        assert runtime.pool.version_id == version
        results = await asyncio.gather(*callers)
        assert results == [1] * 40
        await wait_until(lambda: runtime.pool.draining == 0, what="old pool closed")
        assert (await env.connections())["a"] == 0
