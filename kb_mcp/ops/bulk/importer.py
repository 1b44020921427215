"""Import records into a knowledge base concurrently, and export it as JSONL records.

`import_records` adds each record as kb_add would (the same checks, the same store):
a record with an `external_id` is created, updated in place, or left `unchanged` (nothing
embedded), so running an interrupted import again resumes it: what was stored is skipped
at the cost of one lookup. A record without a key is looked up by content first (a
`duplicate` costs no embedding). `concurrency` adds run at once (the embeddings client
coalesces their calls); a record that fails says why and the others go on. `on_done` is
called after every record (the progress bar).

`export_records` writes every document as one JSON object a line, the shape
`kb_mcp.ops.bulk.sources` reads back (export then import into an empty knowledge base
gives the same documents: namespace, key, title, content, tags, metadata; new ids).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from kb_mcp.db.dump import dump_documents
from kb_mcp.db.filters import DEFAULT_NAMESPACE
from kb_mcp.errors import (
    DatabaseError,
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


async def _import_one(app: AppContext, record: Record, namespace: str) -> str:
    space = check_namespace(record.namespace, default=namespace) or DEFAULT_NAMESPACE
    content = check_content(record.content)
    title, tags = check_title(record.title), check_tags(record.tags)
    metadata = check_metadata(record.metadata)
    key = check_external_id(record.external_id)
    if key is None and await app.duplicates.identical(content, space) is not None:
        return "duplicate"
    added = await app.documents.add_document(
        title=title,
        content=content,
        tags=tags,
        metadata=metadata,
        external_id=key,
        dedupe=True,
        namespace=space,
    )
    return added.status


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
    on_done: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Add every record, `concurrency` at a time; the summary (see the module docstring)."""
    summary = ImportSummary()
    queue: asyncio.Queue[Record | BadRecord] = asyncio.Queue()
    for record in records:
        queue.put_nowait(record)

    def finish(status: str, origin: str, reason: str = "") -> None:
        summary.counts[status] += 1
        if reason:
            summary.failures.append((origin, reason))
        if on_done is not None:
            on_done(status)

    async def worker() -> None:
        while not queue.empty():
            record = queue.get_nowait()
            if isinstance(record, BadRecord):
                finish("failed", record.origin, record.reason)
                continue
            try:
                status = await _import_one(app, record, namespace)
            except (ToolInputError, EmbeddingError, DatabaseError) as exc:
                finish("failed", record.origin, _reason(exc))
            else:
                finish(status, record.origin)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, concurrency)):
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
