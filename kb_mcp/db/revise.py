"""Revise a stored document in place: same id, new fields, only changed chunks re-embedded.

`DocumentReviser.revise(id, title=..., content=..., tags=..., metadata=...)` replaces the
fields given (None keeps a field; tags and metadata are replaced whole, not merged). When
the title or content changes, the new content is split into chunks and every chunk whose
embedding input (`title + "\\n\\n" + chunk text`, as `DocumentStore.add_document` embeds
it) equals one already stored reuses that stored vector; only the others are embedded. A
title change therefore re-embeds every chunk (the title is part of each chunk's input).

Embedding happens before the write transaction, so a failed embedding call changes
nothing. The write is one transaction: the document row is locked, checked to be the
version the plan was made from (`updated_at`), updated (`updated_at = clock_timestamp()`),
and its chunks replaced. When another update got there first, the plan is made again from
the new version; the last attempt holds the row lock while it embeds, so concurrent
updates always finish, one after the other, each applied whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog

from kb_mcp.db.documents import TextEmbedder
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import AnyConnection, ConnectionSource
from kb_mcp.db.vectors import check_dimensions, vector_literal
from kb_mcp.embeddings.chunking import split_into_chunks

__all__ = ["DocumentReviser", "Revision"]

log = structlog.get_logger(__name__)

_READ = (
    "SELECT title, content, tags, metadata::text AS metadata, updated_at FROM documents "
    "WHERE id = $1"
)
_READ_CHUNKS = (
    "SELECT ordinal, content, embedding::text AS embedding FROM chunks "
    "WHERE document_id = $1 ORDER BY ordinal"
)

# {n}: the embedding dimension (an int).
_INSERT_CHUNK = (
    "INSERT INTO chunks (document_id, ordinal, content, embedding) "
    "VALUES ($1, $2, $3, $4::text::vector({n}))"
)
_UPDATE_WITH_CHUNKS = (
    "UPDATE documents SET title = $2, content = $3, tags = $4, metadata = $5::jsonb, "
    "embedding = $6::text::vector({n}), updated_at = clock_timestamp() "
    "WHERE id = $1 RETURNING updated_at"
)


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
    chunks: list[tuple[int, str, str]]
    """(ordinal, text, vector literal) of every stored chunk."""


@dataclass(frozen=True, slots=True)
class _Plan:
    title: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    changed: tuple[str, ...]
    chunks: list[tuple[int, str, str]] | None
    """The new chunks with their vector literals; None when title and content stay."""
    embedded: int
    reused: int


class DocumentReviser:
    """Updates documents in `documents`/`chunks` through any `ConnectionSource`."""

    def __init__(
        self, source: ConnectionSource, embedder: TextEmbedder, *, attempts: int = 3
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        n = check_dimensions(embedder.dimensions)
        self._source = source
        self._embedder = embedder
        self._attempts = attempts
        self._insert_chunk = _INSERT_CHUNK.format_map({"n": n})
        self._update_with_chunks = _UPDATE_WITH_CHUNKS.format_map({"n": n})

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
        for attempt in range(1, self._attempts + 1):
            if attempt == self._attempts:
                async with (
                    database_errors("update"),
                    self._source.acquire() as conn,
                    conn.transaction(),
                ):
                    current = await _read(conn, document_id, lock=True)
                    if current is None:
                        return None
                    plan = await self._plan(current, changes)
                    return await self._write(conn, document_id, current, plan)
            async with database_errors("update"), self._source.acquire() as conn:
                current = await _read(conn, document_id, lock=False)
            if current is None:
                return None
            plan = await self._plan(current, changes)
            if not plan.changed:
                return _unchanged(document_id, current)
            async with (
                database_errors("update"),
                self._source.acquire() as conn,
                conn.transaction(),
            ):
                stamp = await conn.fetchval(
                    "SELECT updated_at FROM documents WHERE id = $1 FOR UPDATE", document_id
                )
                if stamp is None:
                    return None
                if stamp == current.updated_at:
                    return await self._write(conn, document_id, current, plan)
            log.info("kb.document_update_retried", document_id=str(document_id), attempt=attempt)
        raise AssertionError("unreachable: the last attempt holds the lock")  # pragma: no cover

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
            return _Plan(title, content, tags, metadata, changed, None, 0, 0)
        pieces = split_into_chunks(content)
        if not pieces:
            raise ValueError("content has no text to store")
        stored = {f"{current.title}\n\n{text}": literal for _, text, literal in current.chunks}
        inputs = [f"{title}\n\n{piece.text}" for piece in pieces]
        missing = list(dict.fromkeys(text for text in inputs if text not in stored))
        fresh: dict[str, str] = {}
        if missing:
            vectors = await self._embedder.embed(missing)
            fresh = {text: vector_literal(v) for text, v in zip(missing, vectors, strict=True)}
        chunks = [
            (piece.ordinal, piece.text, stored.get(text) or fresh[text])
            for piece, text in zip(pieces, inputs, strict=True)
        ]
        reused = sum(1 for text in inputs if text in stored)
        return _Plan(title, content, tags, metadata, changed, chunks, len(inputs) - reused, reused)

    async def _write(
        self, conn: AnyConnection, document_id: UUID, current: _Current, plan: _Plan
    ) -> Revision:
        """Inside the caller's transaction, with the row locked."""
        if not plan.changed:
            return _unchanged(document_id, current)
        if plan.chunks is None:
            stamp = await conn.fetchval(
                "UPDATE documents SET tags = $2, metadata = $3::jsonb, "
                "updated_at = clock_timestamp() WHERE id = $1 RETURNING updated_at",
                document_id,
                plan.tags,
                json.dumps(plan.metadata),
            )
            chunks = len(current.chunks)
        else:
            stamp = await conn.fetchval(
                self._update_with_chunks,
                document_id,
                plan.title,
                plan.content,
                plan.tags,
                json.dumps(plan.metadata),
                plan.chunks[0][2],
            )
            await conn.execute("DELETE FROM chunks WHERE document_id = $1", document_id)
            await conn.executemany(
                self._insert_chunk,
                [(document_id, ordinal, text, literal) for ordinal, text, literal in plan.chunks],
            )
            chunks = len(plan.chunks)
        log.info(
            "kb.document_updated",
            document_id=str(document_id),
            changed=list(plan.changed),
            embedded=plan.embedded,
            reused=plan.reused,
        )
        return Revision(document_id, plan.changed, chunks, plan.embedded, plan.reused, stamp)


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
    chunks = await conn.fetch(_READ_CHUNKS, document_id)
    return _Current(
        title=row["title"],
        content=row["content"],
        tags=list(row["tags"]),
        metadata=json.loads(row["metadata"]),
        updated_at=row["updated_at"],
        chunks=[(int(c["ordinal"]), c["content"], c["embedding"]) for c in chunks],
    )


def _unchanged(document_id: UUID, current: _Current) -> Revision:
    return Revision(document_id, (), len(current.chunks), 0, 0, current.updated_at)
