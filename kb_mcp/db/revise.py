"""Revise a stored document in place: same id, new fields, only changed chunks re-embedded.

`DocumentReviser.revise(id, title=..., content=..., tags=..., metadata=...)` replaces the
fields given (None keeps a field; tags and metadata are replaced whole, not merged). When
the title or content changes, the new content's chunks get their vectors from
`kb_mcp.db.rewrite.embed_chunks` (the same code as kb_add's upsert): every chunk whose
embedding input (`title + "\\n\\n" + chunk text`) equals a stored one reuses that vector,
only the others are embedded. A title change therefore re-embeds every chunk (the title
is part of each chunk's input).

Embedding happens before the write transaction, so a failed embedding call changes
nothing. The write is one transaction through `kb_mcp.db.outcome.committed` (a connection
lost during COMMIT is `DatabaseOutcomeUnknownError`; a failed release after COMMIT is not
a failure): the document row is locked, checked to be the version the plan was made from
(`updated_at`), updated (`updated_at = clock_timestamp()`), and its chunks replaced. When
another update got there first, the plan is made again from the new version; the last
attempt holds the row lock while it embeds, so concurrent updates always finish, one
after the other, each applied whole. Sending the same update again changes nothing, so
an update whose outcome is unknown can simply be retried.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import structlog

from kb_mcp.db.outcome import Unwritten, committed, database_errors
from kb_mcp.db.port import AnyConnection, ConnectionSource, TextEmbedder
from kb_mcp.db.rewrite import (
    ChunkVectors,
    DocumentFields,
    DocumentWriter,
    embed_chunks,
    load_metadata,
    stored_vectors,
)

__all__ = ["DocumentReviser", "Revision"]

log = structlog.get_logger(__name__)

_READ = (
    "SELECT title, content, tags, metadata::text AS metadata, updated_at, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
    "FROM documents d WHERE id = $1"
)


class _Stale(enum.Enum):
    """The document changed since the plan was made: plan again."""

    STALE = enum.auto()


_Found: TypeAlias = "Revision | None"
"""A revision, or None when no document has the id."""
_Attempt: TypeAlias = "Revision | _Stale | None"
"""A revision, None, or: plan again."""


@dataclass(frozen=True, slots=True)
class Revision:
    """What an update did: which fields changed, how many chunks were embedded or reused."""

    id: UUID
    changed: tuple[str, ...]
    chunks: int
    embedded: int
    reused: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class _Current:
    title: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    updated_at: datetime
    chunks: int
    stored: dict[str, list[float]]
    """Embedding input -> vector of every stored chunk (`stored_vectors`)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    fields: DocumentFields
    """The document's fields after the update."""
    changed: tuple[str, ...]
    vectors: ChunkVectors | None
    """The new chunks with their vectors; None when title and content stay."""


class DocumentReviser:
    """Updates documents in `documents`/`chunks` through any `ConnectionSource`."""

    def __init__(
        self, source: ConnectionSource, embedder: TextEmbedder, *, attempts: int = 3
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._source = source
        self._embedder = embedder
        self._attempts = attempts
        self._writer = DocumentWriter.for_dimensions(embedder.dimensions)

    async def revise(
        self,
        document_id: UUID,
        *,
        title: str | None = None,
        content: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Revision | None:
        """Apply the given fields to the document; None when no document has this id."""
        changes = _Changes(title, content, None if tags is None else list(tags), metadata)
        for attempt in range(1, self._attempts):
            async with database_errors("update"), self._source.acquire() as conn:
                current = await _read(conn, document_id, lock=False)
            if current is None:
                return None
            plan = await self._plan(current, changes)
            if not plan.changed:
                return _unchanged(document_id, current)
            write = functools.partial(self._write_if_current, document_id, current, plan)
            outcome = await committed(self._source, "update", write)
            if outcome is not _Stale.STALE:
                return outcome
            log.info("kb.document_update_retried", document_id=str(document_id), attempt=attempt)
        locked = functools.partial(self._plan_and_write_locked, document_id, changes)
        return await committed(self._source, "update", locked)

    async def _write_if_current(
        self, document_id: UUID, current: _Current, plan: _Plan, conn: AnyConnection
    ) -> _Attempt | Unwritten[_Attempt]:
        """Write `plan` if the document is still the version it was made from."""
        stamp = await conn.fetchval(
            "SELECT updated_at FROM documents WHERE id = $1 FOR UPDATE", document_id
        )
        if stamp is None:
            return Unwritten(None)
        if stamp != current.updated_at:
            return Unwritten(_Stale.STALE)
        return await self._write(conn, document_id, current, plan)

    async def _plan_and_write_locked(
        self, document_id: UUID, changes: _Changes, conn: AnyConnection
    ) -> _Found | Unwritten[_Found]:
        """The last attempt: read with the row locked, embed, write; nobody can interleave."""
        current = await _read(conn, document_id, lock=True)
        if current is None:
            return Unwritten(None)
        plan = await self._plan(current, changes)
        if not plan.changed:
            return Unwritten(_unchanged(document_id, current))
        return await self._write(conn, document_id, current, plan)

    async def _plan(self, current: _Current, changes: _Changes) -> _Plan:
        title = current.title if changes.title is None else changes.title
        content = current.content if changes.content is None else changes.content
        tags = current.tags if changes.tags is None else changes.tags
        metadata = current.metadata if changes.metadata is None else changes.metadata
        changed = tuple(
            name
            for name, before, after in (
                ("title", current.title, title),
                ("content", current.content, content),
                ("tags", current.tags, tags),
                ("metadata", current.metadata, metadata),
            )
            if before != after
        )
        if "title" not in changed and "content" not in changed:
            return _Plan(DocumentFields(title, content, tags, metadata), changed, None)
        vectors = await embed_chunks(self._embedder, title, content, current.stored)
        return _Plan(DocumentFields(title, content, tags, metadata), changed, vectors)

    async def _write(
        self, conn: AnyConnection, document_id: UUID, current: _Current, plan: _Plan
    ) -> Revision:
        """Inside the caller's transaction, with the row locked; `plan` changes something."""
        if plan.vectors is None:
            stamp = await self._writer.retag(
                conn, document_id, plan.fields.tags, plan.fields.metadata
            )
            chunks, embedded, reused = current.chunks, 0, 0
        else:
            stamp = await self._writer.replace(conn, document_id, plan.fields, plan.vectors)
            chunks, embedded, reused = len(plan.vectors), plan.vectors.embedded, plan.vectors.reused
        log.info(
            "kb.document_updated",
            document_id=str(document_id),
            changed=list(plan.changed),
            embedded=embedded,
            reused=reused,
        )
        return Revision(document_id, plan.changed, chunks, embedded, reused, stamp)


@dataclass(frozen=True, slots=True)
class _Changes:
    title: str | None
    content: str | None
    tags: list[str] | None
    metadata: dict[str, Any] | None


async def _read(conn: AnyConnection, document_id: UUID, *, lock: bool) -> _Current | None:
    row = await conn.fetchrow(_READ + (" FOR UPDATE" if lock else ""), document_id)
    if row is None:
        return None
    return _Current(
        title=row["title"],
        content=row["content"],
        tags=list(row["tags"]),
        metadata=load_metadata(row["metadata"]),
        updated_at=row["updated_at"],
        chunks=int(row["chunks"]),
        stored=await stored_vectors(conn, document_id, row["title"]),
    )


def _unchanged(document_id: UUID, current: _Current) -> Revision:
    return Revision(document_id, (), current.chunks, 0, 0, current.updated_at)
