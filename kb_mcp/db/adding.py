"""Adding one document: embed its chunks, then store it and them in one transaction.

- The content is split into chunks and every chunk embedded (title prepended, so a
  passage carries its document's subject) *before* the transaction; the document and all
  its chunks are then written in one transaction. A failed embedding call stores nothing.
- With `dedupe=True` and no `external_id`, content identical to a stored document's
  (`kb_mcp.db.dedupe`) is `duplicate`: looked up under the content's advisory lock in the
  inserting transaction, so identical adds racing each other store one document.
- With an `external_id` (the caller's key, unique per namespace) an add is idempotent:
  the same title, content, tags and metadata again is `unchanged` (nothing written, not
  even embedded); different ones replace the document in place (`updated`: same id, new
  chunks, `updated_at` set), embedding only the chunks whose input is not already stored
  (`kb_mcp.db.rewrite`, the same code as `kb_update`), in one transaction under an
  advisory lock on the key, so concurrent adds of one key leave one document.
- A restored document (`Restored`, `kb-mcp import` of an export) keeps its id and
  timestamps when the add creates it; an add that updates or leaves a document keeps
  that document's.
- The commit's outcome is told truly (`kb_mcp.db.outcome`): stored, nothing stored, or
  unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import structlog

from kb_mcp.db.dedupe import find_identical, lock_content
from kb_mcp.db.filters import DEFAULT_NAMESPACE
from kb_mcp.db.models import AddedDocument, Restored
from kb_mcp.db.outcome import Unwritten, committed, database_errors
from kb_mcp.db.port import AnyConnection, ConnectionSource, TextEmbedder
from kb_mcp.db.rewrite import (
    ChunkVectors,
    DocumentFields,
    DocumentWriter,
    embed_chunks,
    stored_vectors,
)

__all__ = ["EXTERNAL_ID_LOCK", "DocumentAdder"]

log = structlog.get_logger(__name__)

EXTERNAL_ID_LOCK = "kb-mcp:external_id:"

_Kept: TypeAlias = tuple[UUID | None, datetime | None, datetime | None]


def _kept(restored: Restored) -> _Kept:
    return (restored.id, restored.created_at, restored.updated_at)


_BY_EXTERNAL_ID = (
    "SELECT id, title, content, tags, metadata::text AS metadata, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
    "FROM documents d WHERE external_id = $1 AND namespace = $2"
)


class DocumentAdder:
    """`kb_add`'s write path (see the module docstring) through any `ConnectionSource`."""

    def __init__(self, source: ConnectionSource, embedder: TextEmbedder) -> None:
        self._source = source
        self._embedder = embedder
        self._writer = DocumentWriter.for_dimensions(embedder.dimensions)

    async def add(
        self,
        *,
        title: str,
        content: str,
        tags: Sequence[str],
        metadata: dict[str, Any],
        external_id: str | None = None,
        dedupe: bool = False,
        namespace: str = DEFAULT_NAMESPACE,
        key_unseen: bool = False,
        restored: Restored | None = None,
    ) -> AddedDocument:
        """Embed the chunks, then store the document and its chunks in one transaction.

        `key_unseen`: the caller has just found no document with this `external_id`, so
        the lookup before embedding is skipped (the write still looks, under the key's
        lock). `restored`: the id and timestamps a *created* document keeps.
        """
        fields = DocumentFields(title=title, content=content, tags=list(tags), metadata=metadata)
        kept = (None, None, None) if restored is None else _kept(restored)
        stored: dict[str, list[float]] = {}
        if external_id is not None and not key_unseen:
            async with database_errors("add"), self._source.acquire() as conn:
                row = await conn.fetchrow(_BY_EXTERNAL_ID, external_id, namespace)
                if row is not None and not fields.same_as(row):
                    stored = await stored_vectors(conn, row["id"], row["title"])
            if row is not None and fields.same_as(row):
                return AddedDocument(id=row["id"], chunks=int(row["chunks"]), status="unchanged")
        vectors = await embed_chunks(self._embedder, title, content, stored)

        async def write(conn: AnyConnection) -> AddedDocument | Unwritten[AddedDocument]:
            if external_id is not None:
                return await self._upsert(conn, namespace, external_id, fields, vectors, kept)
            if dedupe:
                await lock_content(conn, content, namespace)
                existing = await find_identical(conn, content, namespace)
                if existing is not None:
                    return Unwritten(
                        AddedDocument(existing.id, existing.chunks, "duplicate", stored=existing)
                    )
            doc_id = await self._writer.insert(
                conn, fields, vectors, namespace=namespace, kept=kept
            )
            return AddedDocument(doc_id, len(vectors), "created", embedded=vectors.embedded)

        added = await committed(self._source, "add", write)
        log.info(
            "kb.document_added",
            document_id=str(added.id),
            chunks=added.chunks,
            status=added.status,
            embedded=added.embedded,
            reused=added.reused,
        )
        return added

    async def _upsert(
        self,
        conn: AnyConnection,
        namespace: str,
        external_id: str,
        fields: DocumentFields,
        vectors: ChunkVectors,
        kept: _Kept,
    ) -> AddedDocument | Unwritten[AddedDocument]:
        """Create, leave or replace the document of `external_id`, under the key's lock."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"{EXTERNAL_ID_LOCK}{namespace}:{external_id}",
        )
        row = await conn.fetchrow(_BY_EXTERNAL_ID + " FOR UPDATE", external_id, namespace)
        if row is None:
            doc_id = await self._writer.insert(
                conn, fields, vectors, external_id, namespace, kept=kept
            )
            return AddedDocument(doc_id, len(vectors), "created", embedded=vectors.embedded)
        if fields.same_as(row):
            return Unwritten(AddedDocument(row["id"], int(row["chunks"]), "unchanged"))
        await self._writer.replace(conn, row["id"], fields, vectors)
        return AddedDocument(
            row["id"], len(vectors), "updated", embedded=vectors.embedded, reused=vectors.reused
        )
