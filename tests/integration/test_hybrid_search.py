"""Hybrid search and migration 0003 on real PostgreSQL + pgvector and the local embeddings."""

from __future__ import annotations

import re
from typing import Any

from mcp import Client
from mcp_types import CallToolResult

from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import apply_migrations, load_migrations
from kb_mcp.db.search import HybridSearch
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.server.tools import build_mcp_server
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import (
    DIMENSIONS,
    MODEL,
    KbStack,
    OpenAIBackend,
    PoolSource,
)
from tests.support.legacy import insert_legacy_document
from tests.support.mcp_calls import tool_text

_ERRORS_DOC = (
    "Troubleshooting logins",
    "When the pool cannot log in the driver raises InvalidPasswordError with SQLSTATE 28P01. "
    "Check the role, then the pg_hba.conf line for the host.",
)


def _search(kb: KbStack) -> HybridSearch:
    return HybridSearch(kb.source, kb.store)


async def _add_all(kb: KbStack) -> dict[str, str]:
    ids = await kb.add_corpus()
    added = await kb.store.add_document(
        title=_ERRORS_DOC[0], content=_ERRORS_DOC[1], tags=["postgres"], metadata={}
    )
    ids[_ERRORS_DOC[0]] = str(added.id)
    return ids


async def test_migration_0003_upgrades_a_0001_database_with_data_in_place(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """Documents stored before 0003 get a full-text vector and a content hash, and are found."""
    shipped = load_migrations()
    before = [m for m in shipped if m.version < 3]  # the schema a database had before 0003
    rest = shipped[len(before) :]
    async with (
        PoolSource.open(app_database) as source,
        OpenAIBackend.open(fake_openai.base_url, openai_api_key) as backend,
    ):
        assert await apply_migrations(source, dimensions=DIMENSIONS, migrations=before) == [
            m.label for m in before
        ]
        embedder = Embedder(backend, model=MODEL, dimensions=DIMENSIONS)
        store = DocumentStore(source, embedder)
        async with source.acquire() as conn:
            old = await insert_legacy_document(
                conn, embedder, title=_ERRORS_DOC[0], content=_ERRORS_DOC[1]
            )
            spaced = await insert_legacy_document(
                conn, embedder, title="Spaced", content="  two   words\n\there  "
            )
        applied = await apply_migrations(source, dimensions=DIMENSIONS)
        assert applied == [m.label for m in rest]
        async with source.acquire() as conn:
            missing = await conn.fetchval(
                "SELECT count(*) FROM chunks WHERE search_vector IS NULL"
                " OR search_vector = ''::tsvector"
            )
            hashes = {
                row["id"]: row["content_hash"]
                for row in await conn.fetch("SELECT id, content_hash FROM documents")
            }
            same = await conn.fetchval("SELECT kb_content_hash('two words here')")
            index = await conn.fetchval(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_search_vector_idx'"
            )
        hits = await HybridSearch(source, store).search("28P01", limit=3, mode="keyword")
    assert missing == 0
    assert all(re.fullmatch("[0-9a-f]{64}", h) for h in hashes.values())
    assert hashes[spaced] == same
    assert "gin (search_vector)" in index
    assert [h.id for h in hits] == [old]


async def test_the_keyword_index_has_no_pending_list(kb: KbStack) -> None:
    """Migration 0004: the GIN index is updated on insert (fastupdate off), so a search
    never scans a list of recent chunks; a chunk added a moment ago is found by keyword."""
    async with kb.source.acquire() as conn:
        options = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE relname = 'chunks_search_vector_idx'"
        )
    assert options == ["fastupdate=off"]
    await kb.store.add_document(
        title="Fresh", content="A zymurgy note added just now.", tags=[], metadata={}
    )
    hits = await _search(kb).search("zymurgy", limit=3, mode="keyword")
    assert [h.title for h in hits] == ["Fresh"]


async def test_identifiers_and_error_codes_are_found_by_keyword_and_hybrid(kb: KbStack) -> None:
    """An error code, an exception name and a quoted phrase find their document first."""
    ids = await _add_all(kb)
    search = _search(kb)
    for query in ("28P01", "InvalidPasswordError", '"pg_hba.conf"'):
        for mode in ("keyword", "hybrid"):
            hits = await search.search(query, limit=3, mode=mode)
            assert hits, (query, mode)
            assert str(hits[0].id) == ids[_ERRORS_DOC[0]], (query, mode)
            assert "keyword" in hits[0].matched
    phrase = await search.search('"dutch oven"', limit=5, mode="keyword")
    assert [str(h.id) for h in phrase] == [ids["Baking sourdough bread"]]
    assert await search.search('"oven dutch"', limit=5, mode="keyword") == []


async def test_hybrid_hits_say_which_signals_matched(kb: KbStack) -> None:
    """A document found by both signals says so; one found only by meaning says vector."""
    ids = await _add_all(kb)
    hits = await _search(kb).search("autovacuum dead tuples", limit=10)
    first = hits[0]
    assert str(first.id) == ids["Vacuuming PostgreSQL tables"]
    assert first.matched == ("vector", "keyword")
    assert first.vector_score is not None
    assert first.keyword_score is not None
    assert 0 < first.score <= 1.0
    others = [h for h in hits if h.id != first.id]
    assert others
    assert all(h.matched == ("vector",) for h in others)
    assert all(h.keyword_score is None for h in others)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_vector_mode_matches_the_plain_vector_search(kb: KbStack) -> None:
    """mode=vector gives the same ranking as DocumentStore.search."""
    await _add_all(kb)
    plain = await kb.store.search("plants make oxygen from sunlight", limit=4)
    vector = await _search(kb).search("plants make oxygen from sunlight", limit=4, mode="vector")
    assert [h.id for h in vector] == [h.id for h in plain]
    assert all(h.matched == ("vector",) for h in vector)


async def test_tag_filters_apply_to_every_mode(kb: KbStack) -> None:
    """tags=[...] keeps only documents having every tag, in keyword and hybrid modes too."""
    ids = await _add_all(kb)
    search = _search(kb)
    for mode in ("keyword", "hybrid", "vector"):
        hits = await search.search("password rotation", limit=10, mode=mode, tags=["ops"])
        assert {str(h.id) for h in hits} <= {
            ids["Vacuuming PostgreSQL tables"],
            ids["Rotating secrets in AWS Secrets Manager"],
        }, mode
        assert await search.search("password", limit=10, mode=mode, tags=["nope"]) == []


async def test_stop_words_only_match_nothing_by_keyword(kb: KbStack) -> None:
    """A query of stop words has no lexemes: keyword finds nothing, hybrid falls back on meaning."""
    await _add_all(kb)
    assert await _search(kb).search("the and of", limit=5, mode="keyword") == []
    hybrid = await _search(kb).search("the and of", limit=5)
    assert len(hybrid) == 5
    assert all(h.matched == ("vector",) for h in hybrid)


# -- through the MCP tool ---------------------------------------------------------------


async def _call(client: Client, arguments: dict[str, Any]) -> CallToolResult:
    return await client.call_tool("kb_search", arguments)


async def test_kb_search_mode_through_the_tool(kb: KbStack) -> None:
    """kb_search defaults to hybrid, takes every mode, and reports matched signals per hit."""
    ids = await _add_all(kb)
    async with Client(build_mcp_server(kb.context)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        mode_schema = tools["kb_search"].input_schema["properties"]["mode"]
        assert mode_schema["default"] == "hybrid"
        assert set(mode_schema["enum"]) == {"hybrid", "vector", "keyword"}
        for mode in (None, "hybrid", "vector", "keyword"):
            arguments: dict[str, Any] = {"query": "InvalidPasswordError 28P01"}
            if mode is not None:
                arguments["mode"] = mode
            result = await _call(client, arguments)
            assert not result.is_error, tool_text(result)
            assert isinstance(result.structured_content, dict)
            hits = result.structured_content["hits"]
            assert hits[0]["id"] == ids[_ERRORS_DOC[0]], mode
            assert set(hits[0]["matched"]) <= {"vector", "keyword"}
        for bad in ("semantic", "", 3, None, ["hybrid"]):
            refused = await _call(client, {"query": "q", "mode": bad})
            assert refused.is_error, bad
            assert "mode" in tool_text(refused), (bad, tool_text(refused))
