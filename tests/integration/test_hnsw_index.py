"""The chunk index's HNSW parameters (migration hnsw_parameters) on real PostgreSQL."""

from __future__ import annotations

from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import apply_migrations, load_migrations
from kb_mcp.db.vectors import HNSW_EF_CONSTRUCTION, HNSW_M
from kb_mcp.embeddings.embedder import Embedder
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import CORPUS, DIMENSIONS, MODEL, OpenAIBackend, PoolSource
from tests.support.legacy import insert_legacy_document

_RELOPTIONS = (
    "SELECT c.reloptions, i.indexdef FROM pg_class c"
    " JOIN pg_indexes i ON i.indexname = c.relname"
    " WHERE c.relname = 'chunks_embedding_hnsw_idx'"
)
_CHOSEN = [f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"]


async def test_the_hnsw_migration_rebuilds_an_older_index_with_the_chosen_parameters(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """A database from before it, with documents, gets its index rebuilt; search finds them."""
    shipped = load_migrations()
    rebuild = next(m for m in shipped if m.name == "hnsw_parameters")
    before = [m for m in shipped if m.version < rebuild.version]
    async with (
        PoolSource.open(app_database) as source,
        OpenAIBackend.open(fake_openai.base_url, openai_api_key) as backend,
    ):
        await apply_migrations(source, dimensions=DIMENSIONS, migrations=before)
        async with source.acquire() as conn:
            await conn.execute("DROP INDEX chunks_embedding_hnsw_idx")
            # The index as 0001 created it before: pgvector's own defaults.
            await conn.execute(
                "CREATE INDEX chunks_embedding_hnsw_idx ON chunks "
                "USING hnsw (embedding vector_cosine_ops)"
            )
            old = await conn.fetchrow(_RELOPTIONS)
        embedder = Embedder(backend, model=MODEL, dimensions=DIMENSIONS)
        store = DocumentStore(source, embedder)
        ids = {}
        async with source.acquire() as conn:  # as the release before 0005 wrote them
            for title, (content, tags) in CORPUS.items():
                ids[title] = await insert_legacy_document(
                    conn, embedder, title=title, content=content, tags=tags
                )
        applied = await apply_migrations(source, dimensions=DIMENSIONS)
        async with source.acquire() as conn:
            new = await conn.fetchrow(_RELOPTIONS)
            indexed = await conn.fetchval(
                "SELECT count(*) FROM pg_index WHERE indexrelid = "
                "'chunks_embedding_hnsw_idx'::regclass AND indisvalid AND indisready"
            )
        hits = await store.search("borrow checker and references", limit=3)
    assert applied == [m.label for m in shipped if m.version >= rebuild.version]
    assert old is not None
    assert old["reloptions"] is None
    assert new is not None
    assert sorted(new["reloptions"]) == sorted(_CHOSEN)
    assert "USING hnsw (embedding vector_cosine_ops)" in new["indexdef"]
    assert indexed == 1
    assert hits[0].id == ids["Ownership and borrowing in Rust"]


async def test_a_new_database_gets_the_chosen_parameters(app_database: AppDatabase) -> None:
    """Migrating an empty database leaves the index with HNSW_M and HNSW_EF_CONSTRUCTION."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=DIMENSIONS)
        async with source.acquire() as conn:
            row = await conn.fetchrow(_RELOPTIONS)
    assert row is not None
    assert sorted(row["reloptions"]) == sorted(_CHOSEN)


async def test_above_the_hnsw_limit_the_rebuild_leaves_no_index(app_database: AppDatabase) -> None:
    """At 3072 dimensions there is no index before the rebuild and none after."""
    async with PoolSource.open(app_database) as source:
        await apply_migrations(source, dimensions=3072)
        async with source.acquire() as conn:
            row = await conn.fetchrow(_RELOPTIONS)
            versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
    assert row is None
    assert [r["version"] for r in versions] == [m.version for m in load_migrations()]
