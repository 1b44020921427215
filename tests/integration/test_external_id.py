"""kb_add with external_id: created, unchanged, updated in place (reusing the stored vectors
of unchanged chunks); concurrent adds make one; identical adds without a key make one."""

from __future__ import annotations

import asyncio

import pytest
from mcp import Client
from mcp_types import TextContent

from kb_mcp.db.models import AddedDocument
from kb_mcp.embeddings.chunking import split_into_chunks
from kb_mcp.errors import EmbeddingError
from kb_mcp.server.tools import build_mcp_server
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import KbStack

_PARAGRAPHS = [
    f"Paragraph {i} is about {topic}. " * 25
    for i, topic in enumerate(("harbours", "lighthouses", "tides", "ferries", "storms"))
]
_LONG = "\n\n".join(_PARAGRAPHS)
_EDITED = _LONG.replace("Paragraph 2 is about tides.", "Paragraph 2 is about waves.")


async def test_same_key_same_document_is_unchanged_and_writes_nothing(kb: KbStack) -> None:
    """The second identical add returns the first id, embeds nothing and writes nothing."""

    async def add() -> AddedDocument:
        return await kb.store.add_document(
            title="T", content="body " * 50, tags=["a"], metadata={"n": 1.5}, external_id="doc-1"
        )

    first = await add()
    calls = len(kb.backend.calls)
    again = await add()
    assert (first.status, again.status) == ("created", "unchanged")
    assert again.id == first.id
    assert again.chunks == first.chunks
    assert len(kb.backend.calls) == calls
    assert await kb.count("documents") == 1


async def test_same_key_new_fields_update_in_place(kb: KbStack) -> None:
    """A changed add keeps the id, replaces the chunks and moves updated_at."""
    first = await kb.store.add_document(
        title="T", content="old words " * 200, tags=["a"], metadata={}, external_id="doc-2"
    )
    before = await kb.store.get_document(first.id)
    updated = await kb.store.add_document(
        title="T2", content="new text", tags=["b"], metadata={"v": 2}, external_id="doc-2"
    )
    after = await kb.store.get_document(first.id)
    assert updated.status == "updated"
    assert updated.id == first.id
    assert before is not None
    assert after is not None
    assert (after.title, after.content, after.tags, after.metadata) == (
        "T2",
        "new text",
        ["b"],
        {"v": 2},
    )
    assert after.chunks == updated.chunks == 1
    assert after.created_at == before.created_at
    assert after.updated_at > before.updated_at
    assert await kb.count("documents") == 1
    assert await kb.count("chunks") == 1


async def test_without_a_key_every_add_creates(kb: KbStack) -> None:
    """No external_id: status created, a new document each time."""
    results = [
        await kb.store.add_document(title="T", content="same", tags=[], metadata={})
        for _ in range(2)
    ]
    assert [r.status for r in results] == ["created", "created"]
    assert results[0].id != results[1].id


async def test_concurrent_adds_of_one_key_leave_one_document(kb: KbStack) -> None:
    """Twelve adds of one key at once (some different): one document, one created."""
    results = await asyncio.gather(
        *(
            kb.store.add_document(
                title="Same", content=f"version {i % 3}", tags=[], metadata={}, external_id="k"
            )
            for i in range(12)
        )
    )
    assert len({r.id for r in results}) == 1
    assert [r.status for r in results].count("created") == 1
    assert await kb.count("documents") == 1


async def test_metadata_floats_come_back_as_floats(kb: KbStack) -> None:
    """1e308, 1e20, -2.5e-300 and 2**53 round-trip with their types."""
    metadata = {"huge": 1e308, "big": 1e20, "tiny": -2.5e-300, "int": 2**53, "one": 1.0}
    added = await kb.store.add_document(title="F", content="floats", tags=[], metadata=metadata)
    doc = await kb.store.get_document(added.id)
    assert doc is not None
    assert doc.metadata == metadata
    assert {k: type(v) for k, v in doc.metadata.items()} == {
        k: type(v) for k, v in metadata.items()
    }


async def _vectors(kb: KbStack, document_id: object) -> list[tuple[str, str]]:
    async with kb.source.acquire() as conn:
        rows = await conn.fetch(
            "SELECT content, embedding::text AS e FROM chunks WHERE document_id = $1 "
            "ORDER BY ordinal",
            document_id,
        )
    return [(r["content"], r["e"]) for r in rows]


async def test_upsert_update_embeds_only_the_changed_chunk(kb: KbStack) -> None:
    """One paragraph edited under the same key: one input embedded, four vectors reused."""
    first = await kb.store.add_document(
        title="Coast", content=_LONG, tags=[], metadata={}, external_id="coast"
    )
    before = await _vectors(kb, first.id)
    calls = len(kb.backend.calls)
    updated = await kb.store.add_document(
        title="Coast", content=_EDITED, tags=["b"], metadata={}, external_id="coast"
    )
    assert (updated.id, updated.status, updated.embedded, updated.reused) == (
        first.id,
        "updated",
        1,
        len(_PARAGRAPHS) - 1,
    )
    assert kb.backend.calls[calls:] == [1]
    after = await _vectors(kb, first.id)
    assert [t for t, _ in after] == [c.text for c in split_into_chunks(_EDITED)]
    assert [v for i, (_, v) in enumerate(after) if i != 2] == [
        v for i, (_, v) in enumerate(before) if i != 2
    ]
    (fresh,) = await kb.embedder.embed([f"Coast\n\n{after[2][0]}"])
    async with kb.source.acquire() as conn:
        distance = await conn.fetchval(
            "SELECT embedding <=> $2::text::vector FROM chunks "
            "WHERE document_id = $1 AND ordinal = 2",
            first.id,
            "[" + ",".join(map(repr, fresh)) + "]",
        )
    assert distance < 1e-6


async def test_upsert_with_tags_only_changed_embeds_nothing(kb: KbStack) -> None:
    """Same title and content, new tags: updated, every vector reused, no embedding call."""
    first = await kb.store.add_document(
        title="Coast", content=_LONG, tags=["a"], metadata={}, external_id="tags"
    )
    calls = len(kb.backend.calls)
    updated = await kb.store.add_document(
        title="Coast", content=_LONG, tags=["b"], metadata={"v": 1}, external_id="tags"
    )
    assert (updated.status, updated.embedded, updated.reused) == ("updated", 0, len(_PARAGRAPHS))
    assert len(kb.backend.calls) == calls
    doc = await kb.store.get_document(first.id)
    assert doc is not None
    assert (doc.tags, doc.metadata) == (["b"], {"v": 1})


async def test_a_failed_embedding_during_upsert_changes_nothing(
    kb: KbStack, fake_openai: FakeOpenAIServer
) -> None:
    """The embeddings service failing on an upsert's update: document and vectors as before."""
    first = await kb.store.add_document(
        title="Coast", content=_LONG, tags=[], metadata={}, external_id="fail"
    )
    before_doc = await kb.store.get_document(first.id)
    before = await _vectors(kb, first.id)
    fake_openai.fail_next(1, 503)
    with pytest.raises(EmbeddingError):
        await kb.store.add_document(
            title="Coast", content=_EDITED, tags=[], metadata={}, external_id="fail"
        )
    assert await kb.store.get_document(first.id) == before_doc
    assert await _vectors(kb, first.id) == before


async def test_concurrent_upserts_reusing_vectors_leave_one_consistent_document(
    kb: KbStack,
) -> None:
    """Eight upserts of one stored key at once: one document whose chunks match its content."""
    first = await kb.store.add_document(
        title="Coast", content=_LONG, tags=[], metadata={}, external_id="race"
    )
    versions = [_LONG + f"\n\nEnding number {i} of the story." for i in range(8)]
    calls = len(kb.backend.calls)
    results = await asyncio.gather(
        *(
            kb.store.add_document(
                title="Coast", content=v, tags=[], metadata={}, external_id="race"
            )
            for v in versions
        )
    )
    assert {r.id for r in results} == {first.id}
    assert {r.status for r in results} == {"updated"}
    assert all(r.embedded == 1 for r in results)
    assert sum(kb.backend.calls[calls:]) == len(versions)
    doc = await kb.store.get_document(first.id)
    assert doc is not None
    assert doc.content in versions
    stored = await _vectors(kb, first.id)
    assert [t for t, _ in stored] == [c.text for c in split_into_chunks(doc.content)]
    expected = await kb.embedder.embed([f"Coast\n\n{t}" for t, _ in stored])
    async with kb.source.acquire() as conn:
        for ordinal, vector in enumerate(expected):
            distance = await conn.fetchval(
                "SELECT embedding <=> $2::text::vector FROM chunks "
                "WHERE document_id = $1 AND ordinal = $3",
                first.id,
                "[" + ",".join(map(repr, vector)) + "]",
                ordinal,
            )
            assert distance < 1e-6, ordinal
    assert await kb.count("documents") == 1


async def test_racing_identical_adds_without_a_key_store_one(kb: KbStack) -> None:
    """Twelve identical adds at once (dedupe on): one created, eleven duplicates of it."""
    results = await asyncio.gather(
        *(
            kb.store.add_document(
                title=f"Copy {i}", content="the very same words", tags=[], metadata={}, dedupe=True
            )
            for i in range(12)
        )
    )
    assert [r.status for r in results].count("created") == 1
    assert {r.status for r in results} == {"created", "duplicate"}
    assert len({r.id for r in results}) == 1
    assert await kb.count("documents") == 1


async def test_racing_identical_kb_add_calls_store_one(kb: KbStack) -> None:
    """Through the tool: identical kb_add calls at once all answer with one document's id."""
    async with Client(build_mcp_server(kb.context)) as client:
        results = await asyncio.gather(
            *(
                client.call_tool("kb_add", {"title": f"T{i}", "content": "one shared text"})
                for i in range(8)
            )
        )
    texts = ["\n".join(c.text for c in r.content if isinstance(c, TextContent)) for r in results]
    assert not any(r.is_error for r in results), texts
    answers = [r.structured_content for r in results]
    assert all(isinstance(a, dict) for a in answers)
    assert len({a["id"] for a in answers if isinstance(a, dict)}) == 1
    statuses = [a["status"] for a in answers if isinstance(a, dict)]
    assert statuses.count("created") == 1
    assert await kb.count("documents") == 1
