"""kb_update, duplicate detection and document resources, in process and over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents

from kb_mcp.db.revise import DocumentReviser
from kb_mcp.embeddings.chunking import split_into_chunks
from kb_mcp.server.auth import OriginPolicy
from kb_mcp.server.context import ReadinessReport
from kb_mcp.server.http import build_http_app
from kb_mcp.server.namespace_resources import NAMESPACE_DOCUMENTS_URI, NAMESPACES_URI
from kb_mcp.server.tools import build_mcp_server
from kb_mcp.server.validation import MAX_CONTENT_CHARS
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import KbStack, serve_asgi
from tests.support.mcp_calls import call_ok, call_refused
from tests.support.readiness import ReadinessSnapshot

_PARAGRAPHS = [
    f"Paragraph {i} is about {topic}. " * 25
    for i, topic in enumerate(("harbours", "lighthouses", "tides", "ferries", "storms"))
]
_LONG = "\n\n".join(_PARAGRAPHS)


async def _chunks(kb: KbStack, document_id: str) -> list[tuple[str, str]]:
    async with kb.source.acquire() as conn:
        rows = await conn.fetch(
            "SELECT content, embedding::text AS e FROM chunks WHERE document_id = $1::uuid "
            "ORDER BY ordinal",
            document_id,
        )
    return [(r["content"], r["e"]) for r in rows]


# -- kb_update ------------------------------------------------------------------------


async def test_update_keeps_the_id_and_re_embeds_only_changed_chunks(kb: KbStack) -> None:
    """One paragraph edited: one chunk embedded, the rest reuse their stored vectors."""
    async with Client(build_mcp_server(kb.context)) as client:
        added = await call_ok(client, "kb_add", {"title": "Coast", "content": _LONG, "tags": ["a"]})
        before = await _chunks(kb, added["id"])
        assert len(before) == len(_PARAGRAPHS)
        calls = len(kb.backend.calls)
        edited = _LONG.replace("Paragraph 2 is about tides.", "Paragraph 2 is about waves.")
        result = await call_ok(client, "kb_update", {"id": added["id"], "content": edited})
        assert result["id"] == added["id"]
        assert (result["changed"], result["embedded"], result["reused"]) == (["content"], 1, 4)
        assert kb.backend.calls[calls:] == [1]
        after = await _chunks(kb, added["id"])
        assert [text for text, _ in after] == [c.text for c in split_into_chunks(edited)]
        assert [v for i, (_, v) in enumerate(after) if i != 2] == [
            v for i, (_, v) in enumerate(before) if i != 2
        ]
        assert after[2][1] != before[2][1]
        doc = await call_ok(client, "kb_get", {"id": added["id"]})
        assert doc["content"] == edited
        assert doc["updated_at"] > doc["created_at"]
        assert doc["updated_at"] == result["updated_at"]
        hits = await call_ok(client, "kb_search", {"query": "waves", "mode": "keyword"})
        assert [h["id"] for h in hits["hits"]] == [added["id"]]
        gone = await call_ok(client, "kb_search", {"query": "tides", "mode": "keyword"})
        assert gone["hits"] == []


async def test_update_of_tags_or_metadata_embeds_nothing_and_title_re_embeds_all(
    kb: KbStack,
) -> None:
    """Tags and metadata change without an embedding call; a new title changes every input."""
    async with Client(build_mcp_server(kb.context)) as client:
        added = await call_ok(client, "kb_add", {"title": "Coast", "content": _LONG})
        calls = len(kb.backend.calls)
        meta = await call_ok(
            client, "kb_update", {"id": added["id"], "tags": ["x", " x"], "metadata": {"v": 2}}
        )
        assert (meta["changed"], meta["embedded"]) == (["tags", "metadata"], 0)
        assert len(kb.backend.calls) == calls
        same = await call_ok(client, "kb_update", {"id": added["id"], "tags": ["x"]})
        assert (same["changed"], same["updated_at"]) == ([], meta["updated_at"])
        titled = await call_ok(client, "kb_update", {"id": added["id"], "title": "Shoreline"})
        assert (titled["embedded"], titled["reused"]) == (len(_PARAGRAPHS), 0)
        doc = await call_ok(client, "kb_get", {"id": added["id"]})
        assert (doc["title"], doc["tags"], doc["metadata"]) == ("Shoreline", ["x"], {"v": 2})


async def test_a_failed_embedding_during_update_changes_nothing(
    kb: KbStack, fake_openai: FakeOpenAIServer
) -> None:
    """The embeddings service failing mid-update: same content, chunks, vectors and timestamp."""
    async with Client(build_mcp_server(kb.context)) as client:
        added = await call_ok(client, "kb_add", {"title": "Coast", "content": _LONG})
        before_doc = await call_ok(client, "kb_get", {"id": added["id"]})
        before = await _chunks(kb, added["id"])
        fake_openai.fail_next(1, 503)
        text = await call_refused(
            client, "kb_update", {"id": added["id"], "content": _LONG + "\n\nA new ending."}
        )
        assert "the embeddings service failed; nothing was changed" in text
        assert await call_ok(client, "kb_get", {"id": added["id"]}) == before_doc
        assert await _chunks(kb, added["id"]) == before


async def test_concurrent_updates_each_apply_whole(kb: KbStack) -> None:
    """Eight updates of one document at once: the result is one of them, chunks consistent."""
    added = await kb.store.add_document(title="Coast", content=_LONG, tags=[], metadata={})
    versions = [_LONG + f"\n\nEnding number {i} of the story." for i in range(8)]
    reviser = DocumentReviser(kb.source, kb.embedder)
    revisions = await asyncio.gather(*(reviser.revise(added.id, content=v) for v in versions))
    assert all(r is not None and r.changed == ("content",) for r in revisions)
    doc = await kb.store.get_document(added.id)
    assert doc is not None
    assert doc.content in versions
    stored = await _chunks(kb, str(added.id))
    assert [t for t, _ in stored] == [c.text for c in split_into_chunks(doc.content)]
    (vector,) = await kb.embedder.embed([f"Coast\n\n{stored[-1][0]}"])
    async with kb.source.acquire() as conn:
        distance = await conn.fetchval(
            "SELECT embedding <=> $2::text::vector FROM chunks "
            "WHERE document_id = $1 AND ordinal = $3",
            added.id,
            "[" + ",".join(map(repr, vector)) + "]",
            len(stored) - 1,
        )
    assert distance < 1e-6
    stamps = sorted(r.updated_at for r in revisions if r is not None)
    assert len(set(stamps)) == len(versions)


async def test_revise_of_a_missing_document_is_none(kb: KbStack) -> None:
    """revise() on an unknown id is None; a reviser needs at least one attempt."""
    from uuid import uuid4

    reviser = DocumentReviser(kb.source, kb.embedder)
    assert await reviser.revise(uuid4(), title="x") is None
    with pytest.raises(ValueError, match="attempts"):
        DocumentReviser(kb.source, kb.embedder, attempts=0)


_BAD_UPDATES: list[tuple[dict[str, Any], str]] = [
    ({"title": "x"}, "id"),
    ({"id": "nope", "title": "x"}, "id must be a document id"),
    ({"id": "00000000-0000-4000-8000-000000000000", "title": "x"}, "no document has id"),
    ({"id": "{id}"}, "give at least one of title, content, tags or metadata"),
    ({"id": "{id}", "title": "  "}, "title must not be empty"),
    ({"id": "{id}", "title": "t" * 501}, "limit is 500"),
    ({"id": "{id}", "content": ""}, "content must not be empty"),
    ({"id": "{id}", "content": "x" * (MAX_CONTENT_CHARS + 1)}, "limit is 200000"),
    ({"id": "{id}", "content": "a\x00b"}, "NUL"),
    ({"id": "{id}", "tags": "solo"}, "tags"),
    ({"id": "{id}", "tags": [""]}, r"tags[0] must not be empty"),
    ({"id": "{id}", "tags": [f"t{i}" for i in range(33)]}, "limit is 32"),
    ({"id": "{id}", "metadata": ["x"]}, "metadata"),
    ({"id": "{id}", "metadata": {"big": "x" * 20000}}, "limit is 16384"),
]


async def test_bad_kb_update_input_is_a_tool_error_and_changes_nothing(kb: KbStack) -> None:
    """Every bad kb_update argument is refused with a message naming it."""
    async with Client(build_mcp_server(kb.context)) as client:
        added = await call_ok(client, "kb_add", {"title": "Keep", "content": "kept text"})
        before = await call_ok(client, "kb_get", {"id": added["id"]})
        for arguments, message in _BAD_UPDATES:
            filled = {k: (added["id"] if v == "{id}" else v) for k, v in arguments.items()}
            text = await call_refused(client, "kb_update", filled)
            assert message in text, (arguments, text)
        assert await call_ok(client, "kb_get", {"id": added["id"]}) == before


# -- duplicates -----------------------------------------------------------------------


async def test_identical_content_returns_the_existing_id(kb: KbStack) -> None:
    """Same content (whitespace aside) is not stored twice and costs no embedding call."""
    async with Client(build_mcp_server(kb.context)) as client:
        first = await call_ok(client, "kb_add", {"title": "One", "content": "alpha beta\ngamma"})
        assert first["status"] == "created"
        calls = len(kb.backend.calls)
        again = await call_ok(
            client, "kb_add", {"title": "Two", "content": "  alpha  beta gamma\n"}
        )
        assert (again["id"], again["status"], again["chunks"]) == (first["id"], "duplicate", 1)
        assert len(kb.backend.calls) == calls
        other = await call_ok(client, "kb_add", {"title": "Three", "content": "Alpha beta gamma"})
        assert other["status"] == "created"
        assert other["id"] != first["id"]
    assert await kb.count("documents") == 2


async def test_dedupe_threshold_reports_near_duplicates(kb: KbStack) -> None:
    """A near copy above the threshold is stored and reported; a distinct text is not."""
    async with Client(build_mcp_server(kb.context)) as client:
        base = await call_ok(client, "kb_add", {"title": "Coast", "content": _LONG})
        await call_ok(client, "kb_add", {"title": "Bread", "content": "Knead dough, let it rise."})
        near = await call_ok(
            client,
            "kb_add",
            {"title": "Coast", "content": _LONG + " One more line.", "dedupe_threshold": 0.9},
        )
        assert near["status"] == "created"
        assert [n["id"] for n in near["near_duplicates"]] == [base["id"]]
        assert 0.9 <= near["near_duplicates"][0]["similarity"] <= 1.0
        far = await call_ok(
            client,
            "kb_add",
            {"title": "Rust", "content": "Ownership and borrowing.", "dedupe_threshold": 0.9},
        )
        assert far["near_duplicates"] == []
        for bad in (0, -0.5, 1.5, "high", True):
            text = await call_refused(
                client, "kb_add", {"title": "t", "content": "c", "dedupe_threshold": bad}
            )
            assert "dedupe_threshold" in text, (bad, text)
    assert await kb.count("documents") == 4


# -- resources ------------------------------------------------------------------------


async def test_documents_are_listable_and_readable_resources(kb: KbStack) -> None:
    """The templates are advertised (documents, and namespaces: issue 22); resources/list
    pages every document; read gives markdown."""
    ids = await kb.add_corpus()
    async with Client(build_mcp_server(kb.context)) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == [
            "kb://documents/{id}",
            NAMESPACES_URI,
            NAMESPACE_DOCUMENTS_URI,
        ]
        listed = await client.list_resources()
        assert {r.uri for r in listed.resources} == {f"kb://documents/{i}" for i in ids.values()}
        assert {r.name for r in listed.resources} == set(ids)
        assert listed.next_cursor is None
        doc_id = ids["Baking sourdough bread"]
        read = await client.read_resource(f"kb://documents/{doc_id}")
        (content,) = read.contents
        assert isinstance(content, TextResourceContents)
        assert content.text.startswith("# Baking sourdough bread\n\n")
        assert "sourdough starter" in content.text
        assert content.mime_type == "text/markdown"
        for uri, message in (
            ("kb://documents/not-a-uuid", "id must be a document id"),
            ("kb://documents/00000000-0000-4000-8000-000000000000", "no document has id"),
        ):
            with pytest.raises(MCPError, match=message):
                await client.read_resource(uri)
        with pytest.raises(MCPError, match="cursor"):
            await client.list_resources(cursor="garbage!")


async def test_resources_list_pages_fifty_at_a_time(kb: KbStack) -> None:
    """More documents than a page: next_cursor leads to the rest, each listed once."""
    async with kb.source.acquire() as conn:
        await conn.execute(
            "INSERT INTO documents (title, content) "
            "SELECT 'doc ' || n, 'text ' || n FROM generate_series(1, 60) AS n"
        )
    async with Client(build_mcp_server(kb.context)) as client:
        first = await client.list_resources()
        assert len(first.resources) == 50
        assert first.next_cursor
        rest = await client.list_resources(cursor=first.next_cursor)
        assert len(rest.resources) == 10
        assert rest.next_cursor is None
        names = {r.name for r in first.resources + rest.resources}
    assert names == {f"doc {n}" for n in range(1, 61)}


async def test_resources_list_lists_the_documents_of_every_namespace(kb: KbStack) -> None:
    """resources/list pages through every namespace's documents (issue 22), newest first,
    50 a page, each listed once, described by its namespace, and each readable by its id."""
    async with kb.source.acquire() as conn:
        await conn.execute(
            "INSERT INTO documents (title, content, namespace, created_at) "
            "SELECT 'doc ' || n, 'text ' || n, (ARRAY['default', 'ocean', 'rivers'])[n % 3 + 1],"
            " now() - n * interval '1 minute' FROM generate_series(1, 61) AS n"
        )
    async with Client(build_mcp_server(kb.context)) as client:
        first = await client.list_resources()
        assert first.next_cursor
        rest = await client.list_resources(cursor=first.next_cursor)
        listed = first.resources + rest.resources
        read = await client.read_resource(listed[-1].uri)
    assert (len(first.resources), len(rest.resources), rest.next_cursor) == (50, 11, None)
    assert [r.name for r in listed] == [f"doc {n}" for n in range(1, 62)]
    assert {r.description for r in listed} == {
        "namespace default",
        "namespace ocean",
        "namespace rivers",
    }
    (content,) = read.contents
    assert isinstance(content, TextResourceContents)
    assert content.text == "# doc 61\n\ntext 61"


# -- over HTTP ------------------------------------------------------------------------


async def _ready() -> ReadinessReport:
    return ReadinessSnapshot(ready=True)


@asynccontextmanager
async def _http_client(kb: KbStack) -> AsyncIterator[Client]:
    app = build_http_app(
        build_mcp_server(kb.context),
        readiness=_ready,
        auth=None,
        policy=OriginPolicy.for_bind("127.0.0.1"),
    )
    async with (
        serve_asgi(app) as base,
        create_mcp_http_client() as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_new_tools_and_resources_over_streamable_http(kb: KbStack) -> None:
    """Hybrid search, kb_update, duplicates and resources through a real HTTP server."""
    async with _http_client(kb) as client:
        added = await call_ok(
            client, "kb_add", {"title": "Errors", "content": "SQLSTATE 28P01 seen"}
        )
        dup = await call_ok(client, "kb_add", {"title": "Again", "content": "SQLSTATE 28P01 seen"})
        assert (dup["id"], dup["status"]) == (added["id"], "duplicate")
        updated = await call_ok(
            client, "kb_update", {"id": added["id"], "content": "SQLSTATE 28000 seen"}
        )
        assert updated["changed"] == ["content"]
        hits = (await call_ok(client, "kb_search", {"query": "28000"}))["hits"]
        assert [(h["id"], "keyword" in h["matched"]) for h in hits] == [(added["id"], True)]
        assert "mode" in await call_refused(client, "kb_search", {"query": "q", "mode": "fuzzy"})
        assert "no document has id" in await call_refused(
            client, "kb_update", {"id": "00000000-0000-4000-8000-000000000000", "title": "t"}
        )
        listed = await client.list_resources()
        assert [r.uri for r in listed.resources] == [f"kb://documents/{added['id']}"]
        read = await client.read_resource(f"kb://documents/{added['id']}")
        (content,) = read.contents
        assert isinstance(content, TextResourceContents)
        assert content.text == "# Errors\n\nSQLSTATE 28000 seen"
