"""Documents and their embedded chunks in PostgreSQL: add, search, get, list, delete.

`DocumentStore` expects validated input (`kb_mcp.server.validation` checks it first).

- add: the content is split into chunks and every chunk embedded (title prepended, so a
  passage carries its document's subject) *before* the transaction; the document and all
  its chunks are then written in one transaction. A failed embedding call stores nothing.
- search: cosine distance over chunks; each document is ranked by its best chunk, which
  is returned as the snippet; `score = 1 - cosine distance` (1.0 is identical). Without a
  tag filter the HNSW index picks candidate chunks (`hnsw.ef_search` raised to the
  candidate count); with one, search is exact over the matching documents' chunks (GIN
  narrows the documents), so a filter never hides a match. A tag filter means "has every
  one of these tags" (`tags @> $1`).
- list: newest first, keyset-paged by `(created_at, id)`, with the total count.

asyncpg and socket errors become `DatabaseError` (`DatabaseUnavailableError` when the
connection is the problem) naming the operation, never a value.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import structlog

from kb_mcp.db.port import ConnectionSource
from kb_mcp.db.vectors import distance_sql, init_connection, vector_literal
from kb_mcp.embeddings.chunking import split_into_chunks
from kb_mcp.errors import DatabaseError, DatabaseUnavailableError

__all__ = [
    "SNIPPET_CHARS",
    "AddedDocument",
    "Document",
    "DocumentPage",
    "DocumentStore",
    "DocumentSummary",
    "PageCursor",
    "SearchHit",
    "TextEmbedder",
    "init_connection",
]

log = structlog.get_logger(__name__)

SNIPPET_CHARS = 400
_MAX_CANDIDATES = 1000
"""pgvector's ceiling for `hnsw.ef_search`."""


class TextEmbedder(Protocol):
    """What the store needs from `kb_mcp.embeddings.embedder.Embedder`."""

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_one(self, text: str) -> list[float]: ...


@dataclass(frozen=True, slots=True)
class AddedDocument:
    id: UUID
    chunks: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: UUID
    title: str
    snippet: str
    score: float
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Document:
    id: UUID
    title: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    chunks: int


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    id: UUID
    title: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where the next page starts: strictly older than this (created_at, id)."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class DocumentPage:
    documents: list[DocumentSummary]
    total: int
    next_cursor: PageCursor | None


# Templates: {vector4}/{vector5} become "$4::text::vector(N)"/"$5::...", {distance} the
# cosine distance of c.embedding to $1 matching the chunk index (see kb_mcp.db.vectors).
_INSERT_DOCUMENT = (
    "INSERT INTO documents (title, content, tags, metadata, embedding) "
    "VALUES ($1, $2, $3, $4::jsonb, {vector5}) RETURNING id"
)
_INSERT_CHUNK = (
    "INSERT INTO chunks (document_id, ordinal, content, embedding) VALUES ($1, $2, $3, {vector4})"
)
# $1 query vector, $2 candidate chunks from the HNSW index, $3 documents to return.
_NEAREST = (
    "SELECT d.id, d.title, d.tags, best.content AS snippet, best.distance FROM ("
    " SELECT DISTINCT ON (nearest.document_id) nearest.document_id,"
    " nearest.content, nearest.distance FROM ("
    "  SELECT c.document_id, c.ordinal, c.content, {distance} AS distance"
    "  FROM chunks c ORDER BY {distance} LIMIT $2"
    " ) AS nearest ORDER BY nearest.document_id, nearest.distance, nearest.ordinal"
    ") AS best JOIN documents d ON d.id = best.document_id "
    "ORDER BY best.distance, d.id LIMIT $3"
)
# $1 query vector, $2 documents to return, $3 (filtered only) tags every document must have.
_EXACT = (
    "SELECT best.id, best.title, best.tags, best.content AS snippet, best.distance FROM ("
    " SELECT DISTINCT ON (c.document_id) d.id, d.title, d.tags, c.content,"
    " {distance} AS distance"
    " FROM chunks c JOIN documents d ON d.id = c.document_id {where}"
    " ORDER BY c.document_id, distance, c.ordinal"
    ") AS best ORDER BY best.distance, best.id LIMIT $2"
)


@dataclass(frozen=True, slots=True)
class _Queries:
    """The statements that depend on the embedding dimension (only an int is filled in)."""

    insert_document: str
    insert_chunk: str
    nearest: str
    exact: str
    exact_filtered: str

    @classmethod
    def for_dimensions(cls, dimensions: int) -> _Queries:
        fill = {
            "vector4": f"$4::text::vector({int(dimensions)})",
            "vector5": f"$5::text::vector({int(dimensions)})",
            "distance": distance_sql(dimensions, "c.embedding", "$1"),
        }
        return cls(
            insert_document=_INSERT_DOCUMENT.format_map(fill),
            insert_chunk=_INSERT_CHUNK.format_map(fill),
            nearest=_NEAREST.format_map(fill),
            exact=_EXACT.format_map({**fill, "where": ""}),
            exact_filtered=_EXACT.format_map({**fill, "where": "WHERE d.tags @> $3::text[]"}),
        )


class DocumentStore:
    """Queries over `documents` and `chunks` through any `ConnectionSource`."""

    def __init__(self, source: ConnectionSource, embedder: TextEmbedder) -> None:
        self._source = source
        self._embedder = embedder
        self._sql = _Queries.for_dimensions(embedder.dimensions)

    async def add_document(
        self, *, title: str, content: str, tags: Sequence[str], metadata: dict[str, Any]
    ) -> AddedDocument:
        """Embed every chunk, then store the document and its chunks in one transaction."""
        chunks = split_into_chunks(content)
        if not chunks:
            raise ValueError("content has no text to store")
        vectors = await self._embedder.embed([f"{title}\n\n{chunk.text}" for chunk in chunks])
        literals = [vector_literal(v) for v in vectors]
        async with _database("add"), self._source.acquire() as conn, conn.transaction():
            doc_id: UUID = await conn.fetchval(
                self._sql.insert_document,
                title,
                content,
                list(tags),
                json.dumps(metadata),
                literals[0],
            )
            await conn.executemany(
                self._sql.insert_chunk,
                [(doc_id, c.ordinal, c.text, lit) for c, lit in zip(chunks, literals, strict=True)],
            )
        log.info("kb.document_added", document_id=str(doc_id), chunks=len(chunks))
        return AddedDocument(id=doc_id, chunks=len(chunks))

    async def search(
        self, query: str, *, limit: int, tags: Sequence[str] | None = None
    ) -> list[SearchHit]:
        """Documents ranked by their best chunk's cosine similarity to the query."""
        vector = vector_literal(await self._embedder.embed_one(query))
        async with _database("search"), self._source.acquire() as conn:
            if tags:
                rows = await conn.fetch(self._sql.exact_filtered, vector, limit, list(tags))
            else:
                candidates = min(_MAX_CANDIDATES, max(40, limit * 10))
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('hnsw.ef_search', $1, true)", str(candidates)
                    )
                    rows = await conn.fetch(self._sql.nearest, vector, candidates, limit)
                if len(rows) < limit:
                    # Few documents, or a few long ones filled every candidate slot.
                    rows = await conn.fetch(self._sql.exact, vector, limit)
        return [
            SearchHit(
                id=row["id"],
                title=row["title"],
                snippet=_snippet(row["snippet"]),
                score=round(1.0 - float(row["distance"]), 6),
                tags=list(row["tags"]),
            )
            for row in rows
        ]

    async def get_document(self, document_id: UUID) -> Document | None:
        """One document with its full content, or None."""
        async with _database("get"), self._source.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT d.id, d.title, d.content, d.tags, d.metadata::text AS metadata, "
                "d.created_at, d.updated_at, "
                "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
                "FROM documents d WHERE d.id = $1",
                document_id,
            )
        if row is None:
            return None
        return Document(
            id=row["id"],
            title=row["title"],
            content=row["content"],
            tags=list(row["tags"]),
            metadata=json.loads(row["metadata"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            chunks=int(row["chunks"]),
        )

    async def list_documents(
        self, *, limit: int, cursor: PageCursor | None = None, tags: Sequence[str] | None = None
    ) -> DocumentPage:
        """A page of documents, newest first, and how many match the filter in all."""
        tag_filter = list(tags) if tags else None
        after_time = cursor.created_at if cursor else None
        after_id = cursor.id if cursor else None
        async with _database("list"), self._source.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, title, tags, created_at, updated_at FROM documents "
                "WHERE ($1::text[] IS NULL OR tags @> $1) "
                "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid)) "
                "ORDER BY created_at DESC, id DESC LIMIT $4",
                tag_filter,
                after_time,
                after_id,
                limit + 1,
            )
            total = await conn.fetchval(
                "SELECT count(*) FROM documents WHERE ($1::text[] IS NULL OR tags @> $1)",
                tag_filter,
            )
        page = [
            DocumentSummary(
                id=row["id"],
                title=row["title"],
                tags=list(row["tags"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        next_cursor = PageCursor(page[-1].created_at, page[-1].id) if more and page else None
        return DocumentPage(documents=page, total=int(total), next_cursor=next_cursor)

    async def delete_document(self, document_id: UUID) -> bool:
        """Delete a document and its chunks; False when there was none."""
        async with _database("delete"), self._source.acquire() as conn:
            status = await conn.execute("DELETE FROM documents WHERE id = $1", document_id)
        deleted = status.split()[-1] != "0"
        if deleted:
            log.info("kb.document_deleted", document_id=str(document_id))
        return deleted


def _snippet(text: str) -> str:
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text.rfind(" ", 0, SNIPPET_CHARS)
    return text[: cut if cut > SNIPPET_CHARS // 2 else SNIPPET_CHARS].rstrip() + "\u2026"


@asynccontextmanager
async def _database(operation: str) -> AsyncIterator[None]:
    """Turn driver and socket errors into `DatabaseError` naming the operation."""
    try:
        yield
    except DatabaseError:
        raise
    except asyncpg.PostgresError as exc:
        log.error(
            "db.query_failed", operation=operation, sqlstate=exc.sqlstate, error=type(exc).__name__
        )
        raise DatabaseError(f"database {operation} failed ({type(exc).__name__})") from exc
    except (asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        log.error("db.connection_failed", operation=operation, error=type(exc).__name__)
        raise DatabaseUnavailableError(
            f"database unreachable during {operation} ({type(exc).__name__})"
        ) from exc
