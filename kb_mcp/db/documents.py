"""Documents and their embedded chunks in PostgreSQL: add, search, get, list, delete.

`DocumentStore` expects validated input (`kb_mcp.server.validation` checks it first).

- add: the content is split into chunks and every chunk embedded (title prepended, so a
  passage carries its document's subject) *before* the transaction; the document and all
  its chunks are then written in one transaction. A failed embedding call stores nothing.
  With an `external_id` (the caller's key, unique per knowledge base) an add is
  idempotent: the same title, content, tags and metadata again is `unchanged` (nothing
  written, not even embedded); different ones replace the document in place (`updated`:
  same id, new chunks, `updated_at` set), in one transaction under an advisory lock on
  the key, so concurrent adds of one key leave one document. The commit's outcome is
  told truly (`kb_mcp.db.outcome`): stored, nothing stored, or unknown.
- search: cosine distance over chunks; each document is ranked by its best chunk, which
  is returned as the snippet; `score = 1 - cosine distance` (1.0 is identical). Without a
  tag filter the HNSW index picks candidate chunks (`hnsw.ef_search` raised to the
  candidate count); with one, search is exact over the matching documents' chunks (GIN
  narrows the documents), so a filter never hides a match. A tag filter means "has every
  one of these tags" (`tags @> $1`).
- list: newest first, keyset-paged by `(created_at, id)`, with the total count.

asyncpg and socket errors become `DatabaseError` (`DatabaseUnavailableError` when the
connection is the problem) naming the operation, never a value. Metadata comes back with
its floats as floats: jsonb prints `1e308` as a 309-digit integer, and since integers
beyond 2**53 are refused on the way in, such a number is read back as the float it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

import structlog

from kb_mcp.db.outcome import committed, database_errors
from kb_mcp.db.port import AnyConnection, ConnectionSource
from kb_mcp.db.vectors import distance_sql, init_connection, vector_literal
from kb_mcp.embeddings.chunking import Chunk, split_into_chunks
from kb_mcp.errors import DatabaseError

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
_SAFE_INTEGER = 2**53
_EXTERNAL_ID_LOCK = "kb-mcp:external_id:"

AddStatus = Literal["created", "updated", "unchanged"]


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
    status: AddStatus = "created"


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
    "INSERT INTO documents (title, content, tags, metadata, embedding, external_id) "
    "VALUES ($1, $2, $3, $4::jsonb, {vector5}, $6) RETURNING id"
)
# $6 is the document id; the same placeholders as the insert otherwise.
_UPDATE_DOCUMENT = (
    "UPDATE documents SET title = $1, content = $2, tags = $3, metadata = $4::jsonb, "
    "embedding = {vector5}, updated_at = now() WHERE id = $6"
)
_BY_EXTERNAL_ID = (
    "SELECT id, title, content, tags, metadata::text AS metadata, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
    "FROM documents d WHERE external_id = $1"
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
    update_document: str
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
            update_document=_UPDATE_DOCUMENT.format_map(fill),
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
        self,
        *,
        title: str,
        content: str,
        tags: Sequence[str],
        metadata: dict[str, Any],
        external_id: str | None = None,
    ) -> AddedDocument:
        """Embed every chunk, then store the document and its chunks in one transaction.

        With `external_id`, an equal document is left alone and a different one replaced
        in place (see the module docstring).
        """
        fields = _Fields(title=title, content=content, tags=list(tags), metadata=metadata)
        if external_id is not None:
            async with database_errors("add"), self._source.acquire() as conn:
                row = await conn.fetchrow(_BY_EXTERNAL_ID, external_id)
            if row is not None and fields.same_as(row):
                return AddedDocument(id=row["id"], chunks=int(row["chunks"]), status="unchanged")
        chunks = split_into_chunks(content)
        if not chunks:
            raise ValueError("content has no text to store")
        vectors = await self._embedder.embed([f"{title}\n\n{chunk.text}" for chunk in chunks])
        literals = [vector_literal(v) for v in vectors]

        async def write(conn: AnyConnection) -> AddedDocument:
            if external_id is not None:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    _EXTERNAL_ID_LOCK + external_id,
                )
                row = await conn.fetchrow(_BY_EXTERNAL_ID + " FOR UPDATE", external_id)
                if row is not None:
                    if fields.same_as(row):
                        return AddedDocument(row["id"], int(row["chunks"]), "unchanged")
                    await self._replace_document(conn, row["id"], fields, chunks, literals)
                    return AddedDocument(row["id"], len(chunks), "updated")
            doc_id: UUID = await conn.fetchval(
                self._sql.insert_document, *fields.row(), literals[0], external_id
            )
            await self._insert_chunks(conn, doc_id, chunks, literals)
            return AddedDocument(doc_id, len(chunks), "created")

        added = await committed(self._source, "add", write)
        log.info(
            "kb.document_added", document_id=str(added.id), chunks=added.chunks, status=added.status
        )
        return added

    async def _replace_document(
        self,
        conn: AnyConnection,
        doc_id: UUID,
        fields: _Fields,
        chunks: Sequence[Chunk],
        literals: Sequence[str],
    ) -> None:
        """Replace a document's fields and all its chunks (inside the caller's transaction)."""
        await conn.execute(self._sql.update_document, *fields.row(), literals[0], doc_id)
        await conn.execute("DELETE FROM chunks WHERE document_id = $1", doc_id)
        await self._insert_chunks(conn, doc_id, chunks, literals)

    async def _insert_chunks(
        self, conn: AnyConnection, doc_id: UUID, chunks: Sequence[Chunk], literals: Sequence[str]
    ) -> None:
        await conn.executemany(
            self._sql.insert_chunk,
            [(doc_id, c.ordinal, c.text, lit) for c, lit in zip(chunks, literals, strict=True)],
        )

    async def cursor_key(self) -> bytes:
        """The key that signs `kb_list` cursors, shared by every task (migration 0002)."""
        async with database_errors("list"), self._source.acquire() as conn:
            key = await conn.fetchval("SELECT key FROM cursor_keys WHERE id")
        if not key:
            raise DatabaseError("database has no cursor key (migration 0002 not applied)")
        return str(key).encode("ascii")

    async def search(
        self, query: str, *, limit: int, tags: Sequence[str] | None = None
    ) -> list[SearchHit]:
        """Documents ranked by their best chunk's cosine similarity to the query."""
        vector = vector_literal(await self._embedder.embed_one(query))
        async with database_errors("search"), self._source.acquire() as conn:
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
        async with database_errors("get"), self._source.acquire() as conn:
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
            metadata=load_metadata(row["metadata"]),
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
        async with database_errors("list"), self._source.acquire() as conn:
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
        async with database_errors("delete"), self._source.acquire() as conn:
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


def load_metadata(text: str) -> dict[str, Any]:
    """Metadata as stored, with integral numbers beyond 2**53 back as the floats they were."""
    value: dict[str, Any] = json.loads(text, parse_int=_parse_int)
    return value


def _parse_int(text: str) -> int | float:
    number = int(text) if len(text) <= 20 else None
    if number is not None and abs(number) <= _SAFE_INTEGER:
        return number
    return float(text)


@dataclass(frozen=True, slots=True)
class _Fields:
    """What an add writes, and whether a stored row already holds exactly that."""

    title: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]

    def row(self) -> tuple[str, str, list[str], str]:
        return self.title, self.content, self.tags, json.dumps(self.metadata)

    def same_as(self, row: Any) -> bool:
        return (
            row["title"] == self.title
            and row["content"] == self.content
            and list(row["tags"]) == self.tags
            and load_metadata(row["metadata"]) == self.metadata
        )
