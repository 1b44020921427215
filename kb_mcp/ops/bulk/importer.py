"""Import records into a knowledge base concurrently, and export it as JSONL records.

`import_records` adds each record as kb_add would (the same checks, the same store), a
batch at a time through `kb_mcp.db.bulk.add_many` (one embeddings pass per batch): a
record with an `external_id` is created, updated in place, or left `unchanged` (nothing
embedded), so running an interrupted import again resumes it: what was stored is skipped
at the cost of a lookup. A record without a key whose identical content is stored is a
`duplicate` (no embedding). A record that fails says why and the others go on. `on_done`
is called after every record (the progress bar).

`export_records` writes every document as one JSON object a line, the shape
`kb_mcp.ops.bulk.sources` reads back: export then import into an empty knowledge base
gives the same documents (id, namespace, key, title, content, tags, metadata, created_at,
updated_at). A record's id is kept when the target holds no document with it and no
earlier record of the import had it; otherwise (a clash) the record is imported as one
without an id: matched by its key (unchanged, updated in place keeping the stored id, or
created with a new id), or, unkeyed, by its content (a duplicate, or a new id).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO
from uuid import UUID

from kb_mcp.db.bulk import NewDocument, add_many
from kb_mcp.db.dump import dump_documents
from kb_mcp.db.filters import DEFAULT_NAMESPACE
from kb_mcp.db.models import Restored
from kb_mcp.errors import (
    DatabaseOutcomeUnknownError,
    EmbeddingError,
    ToolInputError,
)
from kb_mcp.ops.bulk.sources import BadRecord, Record
from kb_mcp.server.context import AppContext
from kb_mcp.server.filter_args import check_namespace
from kb_mcp.server.validation import (
    check_content,
    check_external_id,
    check_metadata,
    check_tags,
    check_title,
)

__all__ = ["ImportSummary", "export_records", "import_records"]

STATUSES = ("created", "updated", "unchanged", "duplicate", "failed")


@dataclass
class ImportSummary:
    """How many records ended in each status, and why the failed ones failed."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        return ", ".join(f"{self.counts[s]} {s}" for s in STATUSES)


def _checked(record: Record, namespace: str, ids: set[UUID]) -> NewDocument:
    """The record as kb_add would take it (its checks, its messages), with its id when no
    record before it in this import had that id (`ids`: those seen)."""
    doc_id = record.id if record.id not in ids else None
    if doc_id is not None:
        ids.add(doc_id)
    restored = None
    if doc_id is not None or record.created_at is not None or record.updated_at is not None:
        restored = Restored(doc_id, record.created_at, record.updated_at)
    return NewDocument(
        title=check_title(record.title),
        content=check_content(record.content),
        tags=check_tags(record.tags),
        metadata=check_metadata(record.metadata),
        external_id=check_external_id(record.external_id),
        namespace=check_namespace(record.namespace, default=namespace) or DEFAULT_NAMESPACE,
        restored=restored,
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, ToolInputError):
        return str(exc)
    if isinstance(exc, DatabaseOutcomeUnknownError):
        return "the connection was lost while committing: outcome unknown (run the import again)"
    if isinstance(exc, EmbeddingError):
        return "the embeddings service failed"
    return "the database failed"


async def import_records(
    app: AppContext,
    records: Sequence[Record | BadRecord],
    *,
    namespace: str = DEFAULT_NAMESPACE,
    concurrency: int = 8,
    batch: int = 64,
    on_done: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Add every record, `batch` at a time through `add_many` (two batches in flight:
    one embedding while the other writes), `concurrency` writes at once in a batch."""
    summary = ImportSummary()

    def finish(status: str, origin: str, reason: str = "") -> None:
        summary.counts[status] += 1
        if reason:
            summary.failures.append((origin, reason))
        if on_done is not None:
            on_done(status)

    valid: list[tuple[str, NewDocument]] = []
    ids: set[UUID] = set()
    for record in records:
        if isinstance(record, BadRecord):
            finish("failed", record.origin, record.reason)
            continue
        try:
            valid.append((record.origin, _checked(record, namespace, ids)))
        except ToolInputError as exc:
            finish("failed", record.origin, _reason(exc))
    batches = [valid[i : i + max(1, batch)] for i in range(0, len(valid), max(1, batch))]
    queue = iter(batches)

    async def worker() -> None:
        for part in queue:
            results = await add_many(
                app.db,
                app.embedder,
                [doc for _, doc in part],
                concurrency=concurrency,
            )
            for (origin, _), result in zip(part, results, strict=True):
                if isinstance(result, Exception):
                    finish("failed", origin, _reason(result))
                else:
                    finish(result.status, origin)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(2, len(batches))):
            group.create_task(worker())
    return summary


async def export_records(app: AppContext, out: TextIO, *, namespace: str | None = None) -> int:
    """Write every document (of `namespace`, or all) as JSONL to `out`; how many."""
    written = 0
    async for doc in dump_documents(app.db, namespace=namespace):
        record = {
            "namespace": doc.namespace,
            "external_id": doc.external_id,
            "title": doc.title,
            "content": doc.content,
            "tags": doc.tags,
            "metadata": doc.metadata,
            "id": str(doc.id),
            "created_at": doc.created_at.isoformat(),
            "updated_at": doc.updated_at.isoformat(),
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    return written
