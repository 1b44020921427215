"""kb_add with external_id: created, unchanged, updated in place; concurrent adds make one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kb_mcp.db.documents import AddedDocument
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import KbStack, kb_stack


@pytest.fixture
async def kb(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> AsyncIterator[KbStack]:
    async with kb_stack(app_database, fake_openai, openai_api_key) as stack:
        yield stack


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
