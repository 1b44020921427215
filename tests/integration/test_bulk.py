"""Bulk import and export on real PostgreSQL: files, directories and JSONL records in, JSONL
out; unchanged documents skipped (resumable); export then import gives the same documents."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from kb_mcp.db.bulk import NewDocument, add_many
from kb_mcp.db.dump import dump_documents
from kb_mcp.db.models import AddedDocument
from kb_mcp.ops.bulk.importer import export_records, import_records
from kb_mcp.ops.bulk.sources import read_sources
from tests.support.knowledge_base import KbStack


def _tree(root: Path) -> Path:
    docs = root / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "guide" / "install.md").write_text(
        "# Installing\n\nRun the installer, then check the version.\n", encoding="utf-8"
    )
    (docs / "notes.txt").write_text("Plain notes about harbours.\n", encoding="utf-8")
    (docs / "image.png").write_bytes(b"\x89PNG")
    records = [
        {"title": "Rec 1", "content": "first record", "tags": ["r"], "external_id": "rec-1"},
        {"title": "Rec 2", "content": "second record", "metadata": {"n": 2.5}},
        "not an object",
    ]
    (docs / "more.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8"
    )
    return docs


async def test_import_reads_files_directories_and_records(kb: KbStack, tmp_path: Path) -> None:
    """Markdown and text files get their relative path as external_id and their heading as
    title; JSONL records keep their fields; a bad line fails alone, named by file and line."""
    records, skipped = read_sources([_tree(tmp_path)])
    summary = await import_records(kb.context, records, namespace="docs", concurrency=4)
    stored = {
        d.external_id or d.title: d async for d in dump_documents(kb.source, namespace="docs")
    }
    assert skipped == 1
    assert dict(summary.counts) == {"created": 4, "failed": 1}
    assert summary.failures == [("more.jsonl:3", "not a JSON object")]
    assert set(stored) == {"guide/install.md", "notes.txt", "rec-1", "Rec 2"}
    assert stored["guide/install.md"].title == "Installing"
    assert stored["notes.txt"].title == "notes"
    assert (stored["rec-1"].tags, stored["Rec 2"].metadata) == (["r"], {"n": 2.5})


async def test_a_second_import_skips_what_is_stored_and_updates_what_changed(
    kb: KbStack, tmp_path: Path
) -> None:
    """Run again (an interrupted import resumed): stored records are unchanged or duplicate
    with no embedding call; an edited file is updated in place."""
    docs = _tree(tmp_path)
    first, _ = read_sources([docs])
    await import_records(kb.context, first[:2], concurrency=2)  # interrupted after two
    resumed = await import_records(kb.context, first, concurrency=4)
    calls = len(kb.backend.calls)
    again = await import_records(kb.context, first, concurrency=4)
    assert dict(resumed.counts) == {"unchanged": 2, "created": 2, "failed": 1}
    assert dict(again.counts) == {"unchanged": 3, "duplicate": 1, "failed": 1}
    assert len(kb.backend.calls) == calls
    (docs / "notes.txt").write_text("Plain notes about lighthouses.\n", encoding="utf-8")
    edited, _ = read_sources([docs])
    changed = await import_records(kb.context, edited)
    assert changed.counts["updated"] == 1
    assert await kb.count("documents") == 4


def _fields(doc: Any) -> tuple[Any, ...]:
    return (doc.namespace, doc.external_id, doc.title, doc.content, doc.tags, doc.metadata)


async def test_export_then_import_into_an_empty_knowledge_base_gives_the_same_documents(
    kb: KbStack, tmp_path: Path
) -> None:
    """Every namespace, key, title, content, tag and metadata value survives the round trip."""
    await kb.add_corpus()
    await kb.store.add_document(
        title="Keyed",
        content="keyed text with unicode \u00e9\u4e2d",
        tags=["k"],
        metadata={"f": 0.1, "big": 2**53, "nested": {"a": [1, "x", None]}},
        external_id="path/to/k.md",
        namespace="proj",
    )
    before = sorted([_fields(d) async for d in dump_documents(kb.source)])
    out = io.StringIO()
    assert await export_records(kb.context, out) == len(before)
    exported = tmp_path / "kb.jsonl"
    exported.write_text(out.getvalue(), encoding="utf-8")
    async with kb.source.acquire() as conn:
        await conn.execute("DELETE FROM documents")
    records, _ = read_sources([exported])
    summary = await import_records(kb.context, records)
    after = sorted([_fields(d) async for d in dump_documents(kb.source)])
    again = io.StringIO()
    await export_records(kb.context, again)
    assert summary.counts["created"] == len(before) == 6
    assert after == before
    # Ids and timestamps too: the second export is the first, line for line.
    assert again.getvalue() == out.getvalue()


async def test_an_import_keeps_a_free_id_and_a_clashing_record_goes_by_its_key(
    kb: KbStack, tmp_path: Path
) -> None:
    """A record's id is kept when no document holds it; a record whose id is held (or given
    twice) is imported without it: by its key (the stored document, its id kept), or as a
    new document; importing an export again changes nothing."""
    held = await kb.store.add_document(title="Held", content="held body", tags=[], metadata={})
    free = "0b0e6e4e-5b59-4c53-9d1e-6f0a2d9c8a11"
    lines = [
        {
            "id": free,
            "title": "Free",
            "content": "free body",
            "external_id": "free",
            "created_at": "2024-01-02T03:04:05+00:00",
        },
        {"id": str(held.id), "title": "Clash", "content": "clash body", "external_id": "clash"},
        {"id": free, "title": "Twice", "content": "twice body"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    records, _ = read_sources([source])
    summary = await import_records(kb.context, records, concurrency=1)
    docs = {d.title: d async for d in dump_documents(kb.source)}
    out = io.StringIO()
    await export_records(kb.context, out)
    exported = tmp_path / "out.jsonl"
    exported.write_text(out.getvalue(), encoding="utf-8")
    rerun = await import_records(kb.context, read_sources([exported])[0])
    assert summary.counts["created"] == 3
    assert str(docs["Free"].id) == free
    assert docs["Free"].created_at.isoformat() == "2024-01-02T03:04:05+00:00"
    assert docs["Free"].updated_at == docs["Free"].created_at
    assert docs["Clash"].id != held.id
    assert docs["Twice"].id not in {held.id, docs["Free"].id}
    assert docs["Held"].title == "Held"
    assert rerun.counts["created"] == 0
    assert rerun.counts["unchanged"] + rerun.counts["duplicate"] == 4


async def test_one_bad_document_in_a_group_fails_alone(kb: KbStack) -> None:
    """New keyed documents are written a group per transaction; a group the database refuses
    is given back and added one by one, so only the bad document fails, with its error."""
    items = [NewDocument(title=f"T{n}", content=f"body {n}", external_id=f"k{n}") for n in range(6)]
    items[3] = NewDocument(title="Bad", content="nul \x00 inside", external_id="k3")
    results = await add_many(kb.source, kb.context.embedder, items, concurrency=2)
    statuses = [r.status if isinstance(r, AddedDocument) else type(r).__name__ for r in results]
    assert statuses == ["created"] * 3 + ["DatabaseError"] + ["created"] * 2
    assert await kb.count("documents") == 5
