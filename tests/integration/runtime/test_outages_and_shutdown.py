"""Secrets Manager outages during refresh, the staleness budget, and shutdown mid-rotation."""

from __future__ import annotations

import asyncio
import socket

from kb_mcp.runtime.supervisor import boot_runtime
from tests.conftest import CapturedLogs
from tests.support.fault_proxy import SERVICE_UNAVAILABLE, FaultProxy
from tests.support.runtime_env import RuntimeEnv, wait_until


async def test_secrets_manager_down_during_refresh_keeps_old_credentials(
    env: RuntimeEnv, captured_logs: CapturedLogs
) -> None:
    """Refreshes fail: the old pool and client keep serving, errors are logged and counted."""
    with FaultProxy(env.endpoint_url) as proxy:
        settings = env.settings(aws_endpoint_url=proxy.endpoint_url, secrets_retry_budget_s=0.2)
        async with boot_runtime(settings) as runtime:
            before = runtime.pool.version_id
            proxy.fail_all(SERVICE_UNAVAILABLE)
            assert not await runtime.refresher.refresh_one(env.postgres_secret)
            assert not await runtime.refresher.refresh_one(env.openai_secret)
            assert runtime.pool.version_id == before
            assert await runtime.pool.fetchval("SELECT 1") == 1
            vectors = await runtime.openai.create_embeddings(
                ["still serving"], model="text-embedding-3-small", dimensions=64
            )
            assert len(vectors[0]) == 64
            assert runtime.metrics.total("RefreshErrors") >= 2
            assert captured_logs.events("secret.refresh_failed")
            health = await runtime.health()
            assert health.ready
            assert not health.degraded
            assert all(s.stale for s in health.secrets)

            proxy.clear()
            version = await env.rotate_postgres()
            assert await runtime.refresher.refresh_one(env.postgres_secret)
            assert runtime.pool.version_id == version


async def test_staleness_past_the_budget_reports_degraded_but_serves(env: RuntimeEnv) -> None:
    """Refreshes failing longer than max staleness: readiness says degraded, requests work."""
    with FaultProxy(env.endpoint_url) as proxy:
        settings = env.settings(
            aws_endpoint_url=proxy.endpoint_url, secrets_retry_budget_s=0.1, max_staleness_s=0.05
        )
        async with boot_runtime(settings) as runtime:
            proxy.fail_all(SERVICE_UNAVAILABLE)
            await runtime.refresher.refresh_all()
            await asyncio.sleep(0.1)  # staleness is a duration: let the budget pass
            health = await runtime.health()
            assert health.ready
            assert health.degraded
            assert health.to_json()["status"] == "degraded"
            assert await runtime.pool.fetchval("SELECT 1") == 1


async def test_shutdown_in_the_middle_of_a_rotation_leaves_nothing_running(
    env: RuntimeEnv,
) -> None:
    """Stopping while a new pool's validation hangs: the task ends, every pool is closed."""
    # A listener that accepts and never answers: validating credentials against it hangs.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        stop = asyncio.Event()
        async with boot_runtime(env.settings(db_connect_timeout_s=30.0)) as runtime:
            refresher = asyncio.create_task(runtime.refresher.run(stop))
            await env.put(env.postgres_secret, env.postgres_json("b", port=port))
            runtime.refresher.trigger()
            await wait_until(lambda: bool(runtime.metrics.total("RotationsDetected")))
            stop.set()
            # The hanging validation (30 s connect timeout) must not hold up the stop.
            await asyncio.wait_for(refresher, timeout=5.0)
            assert runtime.metrics.total("PoolRotations") == 0
        ours = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in ours if "kb_mcp" in repr(t.get_coro())]
        assert sum((await env.connections()).values()) == 0
    finally:
        silent.close()


async def test_sighup_style_trigger_refreshes_at_once(env: RuntimeEnv) -> None:
    """`trigger()` wakes the refresher immediately, long before the TTL."""
    stop = asyncio.Event()
    async with boot_runtime(env.settings(cache_ttl_s=3600.0)) as runtime:
        task = asyncio.create_task(runtime.refresher.run(stop))
        version = await env.rotate_postgres()
        runtime.refresher.trigger()
        await wait_until(lambda: runtime.pool.version_id == version, timeout_s=5.0)
        stop.set()
        await task
