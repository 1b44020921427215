"""Rotations under load: not one request may fail."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from kb_mcp.runtime.supervisor import Runtime, boot_runtime
from tests.support.runtime_env import RuntimeEnv, wait_until

WORKERS = 32
ROTATIONS = 10


@dataclass
class Load:
    ok: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def _one(runtime: Runtime, kind: str) -> None:
    if kind == "short":
        assert await runtime.pool.fetchval("SELECT 1") == 1
    elif kind == "long":
        await runtime.pool.execute("SELECT pg_sleep(0.05)")
    elif kind == "transaction":
        async with runtime.pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS t (n int) ON COMMIT DROP")
            await conn.execute("INSERT INTO t VALUES (1)")
            await conn.execute("SELECT pg_sleep(0.02)")
            assert await conn.fetchval("SELECT count(*) FROM t") == 1
    else:
        vectors = await runtime.openai.create_embeddings(
            ["rotation under load"], model="text-embedding-3-small", dimensions=64
        )
        assert len(vectors[0]) == 64


async def _worker(runtime: Runtime, stop: asyncio.Event, load: Load, seed: int) -> None:
    rng = random.Random(seed)
    kinds = ("short", "long", "transaction", "embedding")
    while not stop.is_set():
        kind = rng.choice(kinds)
        started = time.perf_counter()
        try:
            await _one(runtime, kind)
        except Exception as exc:  # every failure is recorded and fails the test below
            load.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
        else:
            load.ok += 1
            load.by_kind[kind] = load.by_kind.get(kind, 0) + 1
            load.latencies.append(time.perf_counter() - started)


async def test_zero_failed_requests_across_rotations_of_both_secrets(env: RuntimeEnv) -> None:
    """32 workers see no failure while each secret rotates 10 times; old pools close; no leaks."""
    settings = env.settings(cache_ttl_s=0.25, refresh_jitter_ratio=0.1, db_pool_max_size=6)
    load = Load()
    stop_load = asyncio.Event()
    stop_runtime = asyncio.Event()
    async with boot_runtime(settings) as runtime:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(runtime.refresher.run(stop_runtime))
            workers = [
                tasks.create_task(_worker(runtime, stop_load, load, seed))
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
    assert load.failures == []
    assert load.ok > 200
    assert set(load.by_kind) == {"short", "long", "transaction", "embedding"}
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
