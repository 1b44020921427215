"""A runtime with a replica region: boot with the primary down, and the primary killed and
revived under load with not one failed request."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kb_mcp.runtime.supervisor import Runtime, boot_runtime
from tests.support.regions import PRIMARY, REPLICA, TwoRegions, open_two_regions
from tests.support.runtime_env import RuntimeEnv, wait_until

WORKERS = 16


@pytest.fixture
async def regions(env: RuntimeEnv) -> AsyncIterator[TwoRegions]:
    """Both runtime secrets in a primary and a replica region (same VersionIds)."""
    async with open_two_regions() as two:
        # `env` stored them in us-east-1 (moto's state is process-wide): replicate them.
        await two.replicate(env.openai_secret)
        await two.replicate(env.postgres_secret)
        yield two


def _settings(env: RuntimeEnv, regions: TwoRegions, **overrides: Any) -> Any:
    return env.settings(**regions.settings_overrides(), **overrides)


def _regions_in(runtime: Runtime) -> set[str | None]:
    return {s.region for s in runtime.provider.status()}


@dataclass
class Load:
    ok: int = 0
    failures: list[str] = field(default_factory=list)


async def _worker(runtime: Runtime, stop: asyncio.Event, load: Load, seed: int) -> None:
    rng = random.Random(seed)
    names = runtime.settings.required_secret_names
    while not stop.is_set():
        kind = rng.choice(("query", "embedding", "forced-refresh"))
        try:
            if kind == "query":
                assert await runtime.pool.fetchval("SELECT 1") == 1
            elif kind == "embedding":
                await runtime.openai.create_embeddings(
                    ["failover"], model="text-embedding-3-small", dimensions=64
                )
            else:
                # What an auth failure does: a read of the secret now, raising on failure.
                await runtime.provider.refresh(rng.choice(names))
        except Exception as exc:  # every failure is recorded and fails the test below
            load.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
        else:
            load.ok += 1


async def test_boot_with_the_primary_down_serves_from_the_replica(
    env: RuntimeEnv, regions: TwoRegions
) -> None:
    """Boot succeeds in failover; /readyz names us-west-2 for each secret."""
    await regions.kill_primary()
    async with boot_runtime(_settings(env, regions)) as runtime:
        assert await runtime.pool.fetchval("SELECT 1") == 1
        health = (await runtime.health()).to_json()
        assert health["status"] == "ready"
        assert {s["region"] for s in health["secrets"]} == {REPLICA}
        assert runtime.metrics.total("SecretsFailovers") >= 1


async def test_primary_killed_and_revived_under_load_fails_no_request(
    env: RuntimeEnv, regions: TwoRegions
) -> None:
    """16 workers, the primary killed then revived: 0 failures, reads fail over and return."""
    settings = _settings(env, regions, cache_ttl_s=0.25, secrets_failback_interval_s=0.5)
    load = Load()
    stop_load, stop_runtime = asyncio.Event(), asyncio.Event()
    async with boot_runtime(settings) as runtime:
        assert _regions_in(runtime) == {PRIMARY}
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(runtime.refresher.run(stop_runtime))
            for seed in range(WORKERS):
                tasks.create_task(_worker(runtime, stop_load, load, seed))
            await wait_until(lambda: load.ok > 50, what="load running")

            await regions.kill_primary()
            await wait_until(lambda: _regions_in(runtime) == {REPLICA}, what="failover")
            served_in_failover = load.ok
            await wait_until(lambda: load.ok > served_in_failover + 100, what="load in failover")
            health = (await runtime.health()).to_json()
            assert {s["region"] for s in health["secrets"]} == {REPLICA}
            assert not any(s["stale"] for s in health["secrets"])

            await regions.revive_primary()
            await wait_until(lambda: _regions_in(runtime) == {PRIMARY}, what="return")
            version = await regions.put(env.openai_secret, env.openai_key)
            await wait_until(lambda: runtime.openai.version_id == version, what="rotation seen")
            stop_load.set()
            stop_runtime.set()
    assert load.failures == []
    assert runtime.metrics.total("SecretsFailovers") == 1
    assert runtime.metrics.total("SecretsFailbacks") == 1
