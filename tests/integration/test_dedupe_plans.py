"""The duplicate lookup stays one index probe when the statement's cached plan was made on
a nearly empty table (the plan that made a new knowledge base's first adds slow)."""

from __future__ import annotations

from kb_mcp.db.dedupe import find_identical
from kb_mcp.db.migrate import apply_migrations
from kb_mcp.db.port import AnyConnection
from tests.plugins.servers import AppDatabase
from tests.support.knowledge_base import DIMENSIONS, PoolSource

_SCANS = (
    "SELECT seq_scan, coalesce(idx_scan, 0) AS idx_scan "
    "FROM pg_stat_xact_user_tables WHERE relname = 'documents'"
)


async def _store(conn: AnyConnection, first: int, last: int) -> None:
    await conn.execute(
        "INSERT INTO documents (title, content) "
        "SELECT 'note ' || g, 'stored content ' || g FROM generate_series($1::int, $2::int) g",
        first,
        last,
    )


async def test_lookup_planned_for_its_arguments_after_a_plan_made_on_an_empty_table(
    app_database: AppDatabase,
) -> None:
    """A generic plan cached while `documents` was empty does not turn the lookup into a
    scan of 3,000 documents: it probes the hash index and finds the one match."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=DIMENSIONS)
        async with source.acquire() as conn:
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            try:
                await _store(conn, 1, 3)
                await conn.execute("ANALYZE documents")  # a new knowledge base, as measured
                assert await find_identical(conn, "nothing like it") is None
                await _store(conn, 4, 3000)
                async with conn.transaction():
                    before = await conn.fetchrow(_SCANS)
                    found = await find_identical(conn, "  stored content   1234 ")
                    after = await conn.fetchrow(_SCANS)
                missing = await find_identical(conn, "stored content 99999")
            finally:
                await conn.execute("RESET plan_cache_mode")
    assert found is not None
    assert found.title == "note 1234"
    assert missing is None
    assert before is not None
    assert after is not None
    seq_scans = after["seq_scan"] - before["seq_scan"]
    index_scans = after["idx_scan"] - before["idx_scan"]
    assert (seq_scans, index_scans >= 1) == (0, True)
