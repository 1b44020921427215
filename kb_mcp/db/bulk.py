"""Adding many documents at once: one embeddings pass for the whole batch, then each
document written as `DocumentStore.add_document` writes it.

What costs in one-at-a-time adds is per call: an embeddings request per document (the SDK
builds a request and parses a response each time) and, over MCP, a tool call. `add_many`
first finds, in one statement, the keyed documents already stored (`unchanged` ones cost
nothing more; changed ones go the usual way, reusing their stored vectors) and, in
another, the unkeyed ones whose identical content is stored (`duplicate`); then it embeds
the chunk inputs of every new document in one `embed` call (the embedder splits it into
requests of its batch size), and adds each document, `concurrency` at a time, through a
`DocumentAdder` whose embedder answers those inputs from memory (a key found absent is not
looked up again before its write). Every write keeps its own transaction, lock and
outcome (`kb_mcp.db.outcome`), so a result per item is as true as a single add's; an item
that fails carries its exception and the others go on.

Restoring an export: an item's `restored` id is kept when no stored document has it (one
statement finds those held) and it is not given twice; a held id is dropped and the item
is added as one without an id (by its key: unchanged, updated, or created with a new id;
unkeyed: by its content). An unkeyed item keeping its id is not a duplicate of identical
content: the id says it is a document of its own. A concurrent add taking the same id
between the check and the write fails that item (the database refuses a second row).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from kb_mcp.db.adding import DocumentAdder
from kb_mcp.db.dedupe import StoredDuplicate
from kb_mcp.db.group_add import GroupItem, add_group, new_id
from kb_mcp.db.models import AddedDocument, Restored
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import ConnectionSource, TextEmbedder
from kb_mcp.db.rewrite import DocumentFields, DocumentWriter, NewRow, embed_chunks, embedding_input
from kb_mcp.embeddings.chunking import split_into_chunks
from kb_mcp.errors import (
    DatabaseError,
    DatabaseOutcomeUnknownError,
    EmbeddingError,
    ResourceClosedError,
)

__all__ = ["NewDocument", "add_many"]

_KEYED = (
    "SELECT d.namespace, d.external_id, d.id, d.title, d.content, d.tags,"
    " d.metadata::text AS metadata,"
    " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks"
    " FROM documents d JOIN unnest($1::text[], $2::text[]) AS k(namespace, external_id)"
    " ON d.namespace = k.namespace AND d.external_id = k.external_id"
)
_IDENTICAL = (
    "SELECT DISTINCT ON (k.i) k.i, d.id, d.title, d.tags, d.metadata::text AS metadata,"
    " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks"
    " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(namespace, content, i)"
    " JOIN documents d ON d.namespace = k.namespace AND d.content_hash = kb_content_hash(k.content)"
    " ORDER BY k.i, d.created_at, d.id"
)


@dataclass(frozen=True, slots=True)
class NewDocument:
    """One validated document to add (as `DocumentStore.add_document` takes it)."""

    title: str
    content: str
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    namespace: str = "default"
    restored: Restored | None = None
    """From an export: the id and timestamps a created document keeps (`kb_mcp.db.adding`)."""


class _Prefetched:
    """A `TextEmbedder` answering known inputs from memory, others through `fallback`."""

    def __init__(self, fallback: TextEmbedder, known: dict[str, list[float]]) -> None:
        self._fallback = fallback
        self._known = known

    @property
    def dimensions(self) -> int:
        return self._fallback.dimensions

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._known]
        if missing:
            vectors = await self._fallback.embed(missing)
            self._known.update(zip(missing, vectors, strict=True))
        return [self._known[t] for t in texts]

    async def embed_one(self, text: str) -> list[float]:
        (vector,) = await self.embed([text])
        return vector


async def add_many(
    source: ConnectionSource,
    embedder: TextEmbedder,
    items: Sequence[NewDocument],
    *,
    concurrency: int = 8,
) -> list[AddedDocument | Exception]:
    """Add every item (see the module docstring); a result or an exception per item."""
    results: list[AddedDocument | Exception | None] = [None] * len(items)
    items = _free_ids(items, await _held_ids(source, items))
    keyed = [(i, d) for i, d in enumerate(items) if d.external_id is not None]
    # An unkeyed record restoring an id is a document of its own: no content dedupe.
    plain = [
        (i, d)
        for i, d in enumerate(items)
        if d.external_id is None and (d.restored is None or d.restored.id is None)
    ]
    async with database_errors("add"), source.acquire() as conn:
        rows = await conn.fetch(
            _KEYED, [d.namespace for _, d in keyed], [d.external_id for _, d in keyed]
        )
        same = await conn.fetch(
            _IDENTICAL, [d.namespace for _, d in plain], [d.content for _, d in plain]
        )
    stored = {(r["namespace"], r["external_id"]): r for r in rows}
    for i, doc in keyed:
        row = stored.get((doc.namespace, doc.external_id))
        fields = DocumentFields(doc.title, doc.content, list(doc.tags), doc.metadata)
        if row is not None and fields.same_as(row):
            results[i] = AddedDocument(row["id"], int(row["chunks"]), "unchanged")
    for row in same:
        i = plain[int(row["i"]) - 1][0]
        kept = StoredDuplicate(
            row["id"], row["title"], int(row["chunks"]), tuple(row["tags"]), row["metadata"]
        )
        results[i] = AddedDocument(row["id"], kept.chunks, "duplicate", stored=kept)
    fresh = [
        (i, d)
        for i, d in enumerate(items)
        if results[i] is None and (d.namespace, d.external_id) not in stored
    ]
    inputs = list(
        dict.fromkeys(
            embedding_input(d.title, piece.text)
            for _, d in fresh
            for piece in split_into_chunks(d.content)
        )
    )
    known: dict[str, list[float]] = {}
    if inputs:
        try:
            known = dict(zip(inputs, await embedder.embed(inputs), strict=True))
        except EmbeddingError as exc:
            for i, _ in fresh:
                results[i] = exc
    prefetched = _Prefetched(embedder, known)
    adder = DocumentAdder(source, prefetched)
    gate = asyncio.Semaphore(max(1, concurrency))
    grouped = [
        (i, d)
        for i, d in fresh
        if results[i] is None
        and (d.external_id is not None or (d.restored is not None and d.restored.id is not None))
    ]
    if grouped:
        results_of_groups = await _add_in_groups(
            source, prefetched, grouped, gate, group_size=max(1, -(-len(grouped) // concurrency))
        )
        for i, result in results_of_groups.items():
            results[i] = result

    async def add(i: int, doc: NewDocument) -> None:
        async with gate:
            try:
                results[i] = await adder.add(
                    title=doc.title,
                    content=doc.content,
                    tags=doc.tags,
                    metadata=doc.metadata,
                    external_id=doc.external_id,
                    dedupe=doc.restored is None or doc.restored.id is None,
                    namespace=doc.namespace,
                    key_unseen=(doc.namespace, doc.external_id) not in stored,
                    restored=doc.restored,
                )
            except (EmbeddingError, DatabaseError, ResourceClosedError) as exc:
                results[i] = exc

    async with asyncio.TaskGroup() as group:
        for i, doc in enumerate(items):
            if results[i] is None:
                group.create_task(add(i, doc))
    return [r if r is not None else DatabaseError("not added") for r in results]


async def _add_in_groups(
    source: ConnectionSource,
    embedder: TextEmbedder,
    items: Sequence[tuple[int, NewDocument]],
    gate: asyncio.Semaphore,
    *,
    group_size: int,
) -> dict[int, AddedDocument | Exception]:
    """New documents created a group per transaction (`kb_mcp.db.group_add`), `gate` groups
    at once; an item a group gives back is left out (added one by one by the caller)."""
    writer = DocumentWriter.for_dimensions(embedder.dimensions)
    rows: list[GroupItem] = []
    for i, doc in items:
        kept = doc.restored or Restored()
        vectors = await embed_chunks(embedder, doc.title, doc.content)
        fields = DocumentFields(doc.title, doc.content, list(doc.tags), doc.metadata)
        row = NewRow(
            kept.id or new_id(),
            fields,
            vectors,
            doc.namespace,
            doc.external_id,
            kept.created_at,
            kept.updated_at,
        )
        rows.append(GroupItem(i, row))
    answers: dict[int, AddedDocument | Exception] = {}

    async def one(group: Sequence[GroupItem]) -> None:
        async with gate:
            try:
                done, _given_back = await add_group(source, writer, group)
            except DatabaseOutcomeUnknownError as exc:
                answers.update({item.index: exc for item in group})
                return
            answers.update(done)

    async with asyncio.TaskGroup() as tasks:
        for start in range(0, len(rows), group_size):
            tasks.create_task(one(rows[start : start + group_size]))
    return answers


async def _held_ids(source: ConnectionSource, items: Sequence[NewDocument]) -> set[UUID]:
    """The restored ids of `items` that a stored document already has."""
    wanted = [d.restored.id for d in items if d.restored is not None and d.restored.id]
    if not wanted:
        return set()
    async with database_errors("add"), source.acquire() as conn:
        rows = await conn.fetch("SELECT id FROM documents WHERE id = ANY($1::uuid[])", wanted)
    return {row["id"] for row in rows}


def _free_ids(items: Sequence[NewDocument], held: set[UUID]) -> list[NewDocument]:
    """`items`, each restored id that is held (or given twice) dropped: such a record is
    added as one without an id (matched by its key, or by its content)."""
    seen = set(held)
    free = []
    for doc in items:
        restored = doc.restored
        if restored is not None and restored.id is not None:
            if restored.id in seen:
                doc = replace(doc, restored=replace(restored, id=None))
            seen.add(restored.id)
        free.append(doc)
    return free
