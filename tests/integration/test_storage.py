"""Storage against a real PostgreSQL 16 + pgvector: migrations, CRUD, search, atomicity."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import string
from collections.abc import Sequence

import asyncpg
import pytest

from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import Migration, apply_migrations, load_migrations
from kb_mcp.db.nearest import NearestQueries, search_candidates
from kb_mcp.db.search import _Statements
from kb_mcp.db.sqltext import quote_ident, quote_literal
from kb_mcp.db.vectors import init_connection, vector_literal
from kb_mcp.devstack.postgres import PostgresCluster
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.errors import DatabaseError, EmbeddingError
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import (
    CORPUS,
    DIMENSIONS,
    MODEL,
    KbStack,
    OpenAIBackend,
    PoolSource,
    kb_stack,
)

ALL_MIGRATIONS = [migration.label for migration in load_migrations()]


# -- migrations ----------------------------------------------------------------------


async def test_fresh_database_gets_tables_indexes_and_a_history(
    app_database: AppDatabase,
) -> None:
    """A first run applies every migration and creates both tables, the HNSW and GIN indexes."""
    async with PoolSource.open(app_database) as source:
        assert await apply_migrations(source, dimensions=DIMENSIONS) == ALL_MIGRATIONS
        async with source.acquire() as conn:
            indexes = {
                row["indexname"]: row["indexdef"]
                for row in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes")
            }
            history = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["chunks_embedding_hnsw_idx"]
    assert "USING gin (tags)" in indexes["documents_tags_idx"]
    assert [f"{r['version']:04d}_{r['name']}" for r in history] == ALL_MIGRATIONS
    assert history[0]["checksum"] == load_migrations()[0].checksum


async def test_rerun_applies_nothing(app_database: AppDatabase) -> None:
    """Applying migrations again on an up-to-date database is a no-op."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=DIMENSIONS)
        assert await apply_migrations(source, dimensions=DIMENSIONS) == []


async def test_concurrent_appliers_on_an_empty_database_do_not_race(
    app_database: AppDatabase,
) -> None:
    """Two processes' appliers (two login roles) at once: each migration applied exactly once."""
    async with (
        PoolSource.open(app_database, "a") as first,
        PoolSource.open(app_database, "b") as second,
    ):
        results = await asyncio.gather(
            apply_migrations(first, dimensions=DIMENSIONS),
            apply_migrations(second, dimensions=DIMENSIONS),
        )
        async with first.acquire() as conn:
            applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    assert sorted(results) == [[], ALL_MIGRATIONS]
    assert applied == len(ALL_MIGRATIONS)


async def test_a_different_dimension_on_an_existing_database_is_refused(
    app_database: AppDatabase,
) -> None:
    """Changing KB_MCP_EMBEDDING_DIMENSIONS on an existing knowledge base fails clearly."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=DIMENSIONS)
        with pytest.raises(DatabaseError) as caught:
            await apply_migrations(source, dimensions=128)
    message = str(caught.value)
    assert f"vector({DIMENSIONS})" in message
    assert "KB_MCP_EMBEDDING_DIMENSIONS is 128" in message
    assert "cannot change" in caught.value.hint


async def test_an_edited_applied_migration_is_refused(app_database: AppDatabase) -> None:
    """A changed checksum of an applied migration stops the boot."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=DIMENSIONS)
        original = load_migrations()[0]
        edited = dataclasses.replace(original, template=original.template + "\n-- edited\n")
        with pytest.raises(DatabaseError, match="0001_documents was changed"):
            await apply_migrations(source, dimensions=DIMENSIONS, migrations=[edited])


async def test_a_later_migration_applies_in_its_own_transaction(
    app_database: AppDatabase,
) -> None:
    """A failing migration leaves no trace; the ones before it stay applied."""
    shipped = load_migrations()
    latest = max(m.version for m in shipped)  # versions may skip a number between branches
    good = Migration(latest + 1, "notes", "CREATE TABLE notes (id int);")
    bad = Migration(
        latest + 2, "broken", "CREATE TABLE half (id int); SELECT * FROM missing_table;"
    )
    async with PoolSource.open(app_database) as source:
        with pytest.raises(DatabaseError, match=f"migration {bad.label} failed"):
            await apply_migrations(source, dimensions=DIMENSIONS, migrations=[*shipped, good, bad])
        async with source.acquire() as conn:
            versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
            half = await conn.fetchval("SELECT to_regclass('half')")
    assert [r["version"] for r in versions] == [m.version for m in [*shipped, good]]
    assert half is None


async def test_dimensions_above_the_hnsw_limit_search_exactly(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """3072 dimensions (text-embedding-3-large) get no ANN index; exact search still ranks."""
    async with kb_stack(
        app_database, fake_openai, openai_api_key, dimensions=3072, model="text-embedding-3-large"
    ) as stack:
        async with stack.source.acquire() as conn:
            index = await conn.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw_idx'"
            )
        ids = await stack.add_corpus()
        hits = await stack.store.search("how does sourdough bread rise", limit=3)
    assert index == 0
    assert str(hits[0].id) == ids["Baking sourdough bread"]


_TOAST = (
    "SELECT c.reloptions, pg_relation_size(c.reltoastrelid) AS toast_bytes"
    " FROM pg_class c WHERE c.relname = 'chunks'"
)


async def test_chunk_rows_keep_their_embedding_inline_when_they_fit(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """Migration 0006: at 1536 dimensions (a 6 kB vector) a chunk of ordinary length is
    stored whole in its page, so a search reads no TOAST; a chunk too long for a page
    still moves its embedding out of line, and both are found."""
    async with kb_stack(app_database, fake_openai, openai_api_key, dimensions=1536) as stack:
        short = await stack.store.add_document(
            title="Short",
            content="Rotate the database password twice a year.",
            tags=[],
            metadata={},
        )
        async with stack.source.acquire() as conn:
            after_short = await conn.fetchrow(_TOAST)
        # ~950 characters of distinct letter runs (one chunk): little to compress
        rng = random.Random(6)
        words = " ".join("".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(118))
        long = await stack.store.add_document(title="Long", content=words, tags=[], metadata={})
        async with stack.source.acquire() as conn:
            after_long = await conn.fetchrow(_TOAST)
        found = await stack.store.search("rotate the database password", limit=2)
    assert after_short is not None
    assert after_short["reloptions"] == ["toast_tuple_target=8160"]
    assert after_short["toast_bytes"] == 0
    assert after_long is not None
    assert after_long["toast_bytes"] > 0
    assert {hit.id for hit in found} == {short.id, long.id}


@pytest.mark.parametrize("dimensions", [DIMENSIONS, 1536])
async def test_search_query_can_use_the_hnsw_index(
    app_database: AppDatabase, dimensions: int
) -> None:
    """The nearest-chunk queries' distance expression matches the index expression: that of
    mode=vector and that of hybrid search's one statement."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=dimensions)
        vector = [0.5] * dimensions
        hybrid = _Statements.for_dimensions(dimensions).nearest
        async with source.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plans = [
                await conn.fetch(
                    "EXPLAIN " + NearestQueries.for_dimensions(dimensions).nearest,
                    vector,
                    40,
                    5,
                    "default",
                ),
                await conn.fetch(
                    "EXPLAIN " + hybrid, vector, 5, ["some", "words"], [], "default", 50, 0.6, 40
                ),
            ]
    for plan in plans:
        assert "chunks_embedding_hnsw_idx" in "\n".join(row[0] for row in plan)


def _sql_literal(value: object) -> str:
    """`value` written in SQL (the test's own numbers and words, nothing from outside)."""
    if value is None:
        return "NULL"
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return "ARRAY[" + ", ".join(quote_literal(str(v)) for v in value) + "]::text[]"
    if isinstance(value, list):
        return quote_literal(vector_literal(value))
    if isinstance(value, str):
        return quote_literal(value)
    return repr(value)


@pytest.mark.parametrize("dimensions", [DIMENSIONS, 1536])
async def test_a_generic_plan_casts_no_vector_per_row(
    app_database: AppDatabase, dimensions: int
) -> None:
    """The query vector reaches the distance as a `vector` parameter (the binary codec):
    PostgreSQL's generic plan, which a prepared statement switches to after five runs,
    has no `real[]` cast to evaluate on every row, in any of the search statements."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=dimensions)
        vector = [0.5] * dimensions
        queries = NearestQueries.for_dimensions(dimensions)
        hybrid = _Statements.for_dimensions(dimensions)
        words = (["some", "words"], ["not"], "default", 50, 0.6)
        async with source.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            plans = []
            for n, (sql, args) in enumerate(
                (
                    (queries.nearest, (vector, 40, 5, "default")),
                    (queries.exact, (vector, 5, "default")),
                    (hybrid.nearest, (vector, 5, *words, 40)),
                    (hybrid.exact, (vector, 5, *words)),
                )
            ):
                await conn.execute(f"PREPARE generic_{n} AS {sql}")
                values = ", ".join(_sql_literal(arg) for arg in args)
                plans.append(await conn.fetch(f"EXPLAIN VERBOSE EXECUTE generic_{n}({values})"))
            found = await conn.fetch(queries.exact, vector, 5, "default")
    texts = ["\n".join(row[0] for row in plan) for plan in plans]
    assert all("<=> $1)" in text for text in texts)  # the parameter, not a constant
    assert not any("real[]" in text for text in texts)
    assert found == []


async def test_connections_opened_before_the_extension_existed_serve_once_renewed(
    pg_cluster: PostgresCluster, app_database: AppDatabase
) -> None:
    """A role that may create pgvector creates it in the first migration; the pool's
    connections opened before that have no vector codec: they refuse a vector parameter
    (nothing is stored wrong), and serve once renewed (what the boot does)."""
    await pg_cluster.execute("DROP EXTENSION vector", database=app_database.database)
    pool = await asyncpg.create_pool(
        host=app_database.host,
        port=app_database.port,
        user=pg_cluster.superuser,
        password=pg_cluster.superuser_password,
        database=app_database.database,
        min_size=2,
        max_size=2,
        init=init_connection,
    )
    try:
        assert await apply_migrations(PoolSource(pool), dimensions=3) == ALL_MIGRATIONS
        sql = "SELECT vector_dims($1::vector(3))"
        with pytest.raises(asyncpg.DataError, match="expected str, got list"):
            await pool.fetchval(sql, [1.0, 2.0, 3.0])
        await pool.expire_connections()
        first, second = await pool.acquire(), await pool.acquire()  # both connections
        try:
            assert [await c.fetchval(sql, [1.0, 2.0, 3.0]) for c in (first, second)] == [3, 3]
        finally:
            await pool.release(first)
            await pool.release(second)
    finally:
        await pool.close()


async def test_a_missing_extension_the_role_cannot_create_is_a_clear_error(
    pg_cluster: PostgresCluster, app_database: AppDatabase
) -> None:
    """Without pgvector and without the right to create it, the error says what to ask for."""
    await pg_cluster.execute("DROP EXTENSION vector", database=app_database.database)
    async with PoolSource.open(app_database) as source:
        with pytest.raises(DatabaseError, match="vector extension is missing") as caught:
            await apply_migrations(source, dimensions=DIMENSIONS)
    assert "CREATE EXTENSION vector" in caught.value.hint


async def test_both_login_roles_share_objects_through_the_owning_group(
    pg_cluster: PostgresCluster,
    app_database: AppDatabase,
    fake_openai: FakeOpenAIServer,
    openai_api_key: str,
) -> None:
    """Objects made by role a belong to the group; role b reads, writes and migrates them."""
    for user in (app_database.user_a, app_database.user_b):
        await pg_cluster.execute(f"ALTER ROLE {quote_ident(user)} RESET role")
    async with kb_stack(app_database, fake_openai, openai_api_key, which="a") as stack_a:
        added = await stack_a.store.add_document(
            title="Written by a", content="first role writes this", tags=["a"], metadata={}
        )
    async with kb_stack(app_database, fake_openai, openai_api_key, which="b") as stack_b:
        assert await stack_b.store.get_document(added.id) is not None
        assert await stack_b.store.delete_document(added.id)
        async with stack_b.source.acquire() as conn:
            owners = {
                row["tablename"]: row["tableowner"]
                for row in await conn.fetch(
                    "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
                )
            }
    assert set(owners) >= {"chunks", "documents", "schema_migrations"}
    assert set(owners.values()) == {app_database.group}


# -- documents -----------------------------------------------------------------------


async def test_add_get_and_delete_round_trip(kb: KbStack) -> None:
    """A stored document comes back whole, and delete removes it and its chunks."""
    metadata = {"source": "wiki", "rank": 3, "nested": {"ok": True}, "unicode": "café ✓"}
    added = await kb.store.add_document(
        title="Title", content="Some content here.", tags=["x", "y"], metadata=metadata
    )
    doc = await kb.store.get_document(added.id)
    assert doc is not None
    assert (doc.title, doc.content, doc.tags, doc.metadata) == (
        "Title",
        "Some content here.",
        ["x", "y"],
        metadata,
    )
    assert doc.chunks == added.chunks == 1
    assert doc.created_at == doc.updated_at
    assert await kb.store.delete_document(added.id) is True
    assert await kb.store.delete_document(added.id) is False
    assert await kb.store.get_document(added.id) is None
    assert await kb.count("chunks") == 0


async def test_long_content_is_chunked_and_search_returns_the_right_passage(kb: KbStack) -> None:
    """Each chunk is embedded; the snippet is the passage about the query."""
    filler = " ".join(f"Paragraph {i} talks about gardening, soil and compost." for i in range(25))
    middle = "The lighthouse keeper polished the brass lens before the storm reached the harbour."
    content = f"{filler}\n\n{middle}\n\n{filler}"
    added = await kb.store.add_document(title="Notes", content=content, tags=[], metadata={})
    assert added.chunks >= 3
    assert await kb.count("chunks") == added.chunks
    hits = await kb.store.search("lighthouse keeper lens storm harbour", limit=1)
    assert hits[0].id == added.id
    assert "lighthouse keeper" in hits[0].snippet


async def test_search_ranks_the_document_about_the_query_first(kb: KbStack) -> None:
    """Semantic search puts the matching document first, with the best score."""
    ids = await kb.add_corpus()
    cases = {
        "how do I tune autovacuum for dead tuples in postgres": "Vacuuming PostgreSQL tables",
        "secret rotation AWSPENDING AWSCURRENT": "Rotating secrets in AWS Secrets Manager",
        "borrow checker and references": "Ownership and borrowing in Rust",
        "plants make oxygen from sunlight": "Photosynthesis in plants",
    }
    for query, title in cases.items():
        hits = await kb.store.search(query, limit=5)
        assert str(hits[0].id) == ids[title], query
        assert hits[0].score == max(h.score for h in hits)
        assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert len(await kb.store.search("anything", limit=2)) == 2
    assert len(await kb.store.search("anything", limit=50)) == len(CORPUS)


async def test_tag_filter_keeps_only_documents_with_every_tag(kb: KbStack) -> None:
    """tags=[...] means the document has all of them; a strong match elsewhere is hidden."""
    ids = await kb.add_corpus()
    hits = await kb.store.search("sourdough bread", limit=10, tags=["ops"])
    assert {str(h.id) for h in hits} == {
        ids["Vacuuming PostgreSQL tables"],
        ids["Rotating secrets in AWS Secrets Manager"],
    }
    both = await kb.store.search("secrets", limit=10, tags=["ops", "security"])
    assert [str(h.id) for h in both] == [ids["Rotating secrets in AWS Secrets Manager"]]
    assert await kb.store.search("secrets", limit=10, tags=["nope"]) == []


async def test_search_finds_documents_beyond_the_hnsw_candidates(kb: KbStack) -> None:
    """Documents with many close chunks do not crowd the others out of the results."""
    per_document = search_candidates(4) // 2  # three of them fill every candidate slot
    for i in range(3):
        text = "\n\n".join(
            f"Kubernetes pods restart number {i}-{j}. " * 25 for j in range(per_document)
        )
        await kb.store.add_document(title=f"Pods {i}", content=text, tags=[], metadata={})
    other = await kb.store.add_document(
        title="Deployments", content="Kubernetes deployments roll pods out.", tags=[], metadata={}
    )
    hits = await kb.store.search("kubernetes pods restart", limit=4)
    assert len(hits) == 4
    assert other.id in {h.id for h in hits}


async def test_list_pages_newest_first_with_total_and_tag_filter(kb: KbStack) -> None:
    """Keyset paging visits every document once, newest first; total counts all matches."""
    ids = await kb.add_corpus()
    seen: list[str] = []
    cursor = None
    while True:
        page = await kb.store.list_documents(limit=2, cursor=cursor)
        assert page.total == len(CORPUS)
        seen.extend(str(d.id) for d in page.documents)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids.values()))
    ops = await kb.store.list_documents(limit=10, tags=["ops"])
    assert ops.total == 2
    assert ops.next_cursor is None
    assert {d.title for d in ops.documents} == {
        "Vacuuming PostgreSQL tables",
        "Rotating secrets in AWS Secrets Manager",
    }


class _SecondCallFails:
    """A real backend whose second call meets an injected 503 from the fake server."""

    def __init__(self, inner: OpenAIBackend, server: FakeOpenAIServer) -> None:
        self.inner = inner
        self.server = server
        self.calls = 0

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        self.calls += 1
        if self.calls == 2:
            self.server.fail_next(1, 503)
        return await self.inner.create_embeddings(texts, model=model, dimensions=dimensions)


async def test_a_failed_embedding_stores_nothing(
    kb: KbStack, fake_openai: FakeOpenAIServer
) -> None:
    """When the embeddings endpoint fails on any batch, no document and no chunk is written."""
    long_text = "\n\n".join(f"Section {i}. " + "words " * 150 for i in range(20))
    fake_openai.fail_next(1, 500)
    with pytest.raises(EmbeddingError):
        await kb.store.add_document(title="Doomed", content=long_text, tags=[], metadata={})
    assert (await kb.count("documents"), await kb.count("chunks")) == (0, 0)

    flaky = _SecondCallFails(kb.backend, fake_openai)
    embedder = Embedder(flaky, model=MODEL, dimensions=DIMENSIONS, batch_size=8)
    with pytest.raises(EmbeddingError):
        await DocumentStore(kb.source, embedder).add_document(
            title="Doomed", content=long_text, tags=[], metadata={}
        )
    assert flaky.calls == 2
    assert (await kb.count("documents"), await kb.count("chunks")) == (0, 0)


async def test_wrong_vector_size_from_the_endpoint_stores_nothing(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """A model answering with another dimension is an EmbeddingError before any write."""
    async with (
        kb_stack(app_database, fake_openai, openai_api_key) as stack,
        OpenAIBackend.open(fake_openai.base_url, openai_api_key) as backend,
    ):
        liar = Embedder(backend, model=MODEL, dimensions=DIMENSIONS, request_dimensions=False)
        store = DocumentStore(stack.source, liar)
        with pytest.raises(EmbeddingError, match="returned 1536 dimensions"):
            await store.add_document(title="t", content="c", tags=[], metadata={})
        assert await stack.count("documents") == 0


async def test_queries_on_an_unmigrated_database_raise_database_error(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """Driver errors become DatabaseError naming the operation."""
    async with (
        PoolSource.open(app_database) as source,
        OpenAIBackend.open(fake_openai.base_url, openai_api_key) as backend,
    ):
        store = DocumentStore(source, Embedder(backend, model=MODEL, dimensions=DIMENSIONS))
        with pytest.raises(DatabaseError, match="database search failed"):
            await store.search("anything", limit=5)
        with pytest.raises(DatabaseError, match="database list failed"):
            await store.list_documents(limit=5)
