"""A connection the pool fails to take back: the caller's work is done, so it succeeds."""

from __future__ import annotations

from typing import Any

from kb_mcp.db.pool import _Pool
from kb_mcp.db.vectors import SESSION_EF_SEARCH, init_connection
from kb_mcp.runtime.supervisor import boot_runtime
from tests.conftest import CapturedLogs
from tests.support.runtime_env import RuntimeEnv


class _ReleaseFails:
    """The real pool for acquire; a release that raises (as a broken reset would)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def acquire(self, *, timeout: float) -> Any:  # noqa: ASYNC109 - asyncpg's signature
        return await self._pool.acquire(timeout=timeout)

    async def release(self, conn: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - asyncpg's signature
        raise RuntimeError("connection reset failed")


async def test_a_failed_release_is_counted_and_logged_not_raised(
    env: RuntimeEnv, captured_logs: CapturedLogs
) -> None:
    """The query's result reaches the caller; PoolReleaseFailures and db.release_failed say
    what happened; the connection is discarded and the next query works."""
    async with boot_runtime(env.settings(drain_timeout_s=1.0)) as runtime:
        generation = runtime.pool._swap.current  # the one place a test reaches inside
        real = generation.resource
        generation.resource = _Pool(pool=_ReleaseFails(real.pool), identity=real.identity)  # type: ignore[arg-type]  # a stand-in with the two methods acquire() uses
        try:
            assert await runtime.pool.fetchval("SELECT 41 + 1") == 42
        finally:
            generation.resource = real
        assert runtime.metrics.total("PoolReleaseFailures") == 1
        (event,) = captured_logs.events("db.release_failed")
        assert event["error"] == "RuntimeError"
        assert await runtime.pool.fetchval("SELECT 1") == 1


async def test_a_released_connection_keeps_its_session_but_not_its_transaction(
    env: RuntimeEnv,
) -> None:
    """The pool keeps what `init_connection` set for the session (hnsw.ef_search, which a
    search relies on), rolls back a transaction left open, and undoes SET LOCAL."""
    async with boot_runtime(env.settings(), pool_init=init_connection) as runtime:
        pool = runtime.pool
        for _ in range(3):  # each acquire may meet any pooled connection
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW hnsw.ef_search") == str(SESSION_EF_SEARCH)
                async with conn.transaction():
                    await conn.execute("SET LOCAL hnsw.ef_search = 400")
        async with pool.acquire() as conn:
            left_open = conn.transaction()
            await left_open.start()
            await conn.execute("CREATE TEMP TABLE never_committed (id int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.never_committed')") is None
            assert await conn.fetchval("SHOW hnsw.ef_search") == str(SESSION_EF_SEARCH)
