"""Documents and their embedded chunks in PostgreSQL: add, search, get, list, delete.

`DocumentStore` expects validated input (`kb_mcp.server.validation` checks it first).

- add: the content is split into chunks and every chunk embedded (title prepended, so a
  passage carries its document's subject) *before* the transaction; the document and all
  its chunks are then written in one transaction. A failed embedding call stores nothing.
  With `dedupe=True` and no `external_id`, content identical to a stored document's
  (`kb_mcp.db.dedupe`) is `duplicate`: looked up under the content's advisory lock in the
  inserting transaction, so identical adds racing each other store one document.
  With an `external_id` (the caller's key, unique per knowledge base) an add is
  idempotent: the same title, content, tags and metadata again is `unchanged` (nothing
  written, not even embedded); different ones replace the document in place (`updated`:
  same id, new chunks, `updated_at` set), embedding only the chunks whose input is not
  already stored (`kb_mcp.db.rewrite`, the same code as `kb_update`), in one transaction
  under an advisory lock on the key, so concurrent adds of one key leave one document.
  The commit's outcome is told truly (`kb_mcp.db.outcome`): stored, nothing stored, or
  unknown.
- search: cosine distance over chunks; each document is ranked by its best chunk, which
  is returned as the snippet; `score = 1 - cosine distance` (1.0 is identical). The HNSW
  index picks candidate chunks (`hnsw.ef_search` raised to the candidate count), which
  pass through the filter (`kb_mcp.db.filters`: a namespace, and tags, metadata, dates);
  when fewer than `limit` documents are left, search is exact over the chunks of the
  documents that pass (the planner starts from them), so a filter never hides a match.
- list: a namespace's documents passing the filter, newest first, keyset-paged by
  `(created_at, id)`, with the total count.
- Every document belongs to one namespace (migration 0008); an `external_id` is unique
  within its namespace. get and delete take an id (optionally only in a namespace) or a
  namespace and key.

asyncpg and socket errors become `DatabaseError` (`DatabaseUnavailableError` when the
connection is the problem) naming the operation, never a value. Metadata comes back with
its floats as floats (`kb_mcp.db.rewrite.load_metadata`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import structlog

from kb_mcp.db.dedupe import StoredDuplicate, find_identical, lock_content
from kb_mcp.db.filters import (
    DEFAULT_NAMESPACE,
    DocumentFilter,
    bind,
    document_filter,
    documents_filter,
)
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
from kb_mcp.db.vectors import distance_sql, init_connection, vector_param
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
    "load_metadata",
    "search_candidates",
]

log = structlog.get_logger(__name__)

SNIPPET_CHARS = 400
_MAX_CANDIDATES = 1000
"""pgvector's ceiling for `hnsw.ef_search`."""
_MIN_CANDIDATES = 100
_CANDIDATES_PER_HIT = 40
"""Chosen at 100k chunks by `bench/bench_search.py` (recall@10 0.99 at 400 candidates)."""


def search_candidates(limit: int) -> int:
    """Chunks the HNSW index is asked for (and `hnsw.ef_search`) to return `limit` documents."""
    return min(_MAX_CANDIDATES, max(_MIN_CANDIDATES, limit * _CANDIDATES_PER_HIT))


_EXTERNAL_ID_LOCK = "kb-mcp:external_id:"

AddStatus = Literal["created", "updated", "unchanged", "duplicate"]


@dataclass(frozen=True, slots=True)
class AddedDocument:
    id: UUID
    chunks: int
    status: AddStatus = "created"
    embedded: int = 0
    """Chunks embedded for this add (created: all; updated: those not already stored)."""
    reused: int = 0
    """Chunks whose stored vector was reused (updated only)."""
    stored: StoredDuplicate | None = None
    """duplicate only: the stored document (its title, tags, metadata were kept)."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: UUID
    title: str
    snippet: str
    score: float
    tags: list[str] = field(default_factory=list)
    external_id: str | None = None


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
    namespace: str = DEFAULT_NAMESPACE
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    id: UUID
    title: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    namespace: str = DEFAULT_NAMESPACE
    external_id: str | None = None


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


# Templates: {distance} is the cosine distance of c.embedding to $1 matching the chunk
# index (see kb_mcp.db.vectors).
_BY_EXTERNAL_ID = (
    "SELECT id, title, content, tags, metadata::text AS metadata, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
    "FROM documents d WHERE external_id = $1 AND namespace = $2"
)
# $1 query vector, $2 candidate chunks from the HNSW index, $3 documents to return,
# $4 namespace (kb_mcp.db.filters: the candidates are filtered, then ranked).
_NEAREST = (
    "SELECT d.id, d.title, d.tags, d.external_id, best.content AS snippet, best.distance FROM ("
    " SELECT DISTINCT ON (nearest.document_id) nearest.document_id,"
    " nearest.content, nearest.distance FROM ("
    "  SELECT c.document_id, c.ordinal, c.content, {distance} AS distance"
    "  FROM chunks c ORDER BY {distance} LIMIT $2"
    " ) AS nearest WHERE {doc_filter_nearest}"
    " ORDER BY nearest.document_id, nearest.distance, nearest.ordinal"
    ") AS best JOIN documents d ON d.id = best.document_id "
    "ORDER BY best.distance, d.id LIMIT $3"
)
# $1 query vector, $2 documents to return, $3 namespace (and the filter, kb_mcp.db.filters).
_EXACT = (
    "SELECT best.id, best.title, best.tags, best.external_id, best.content AS snippet,"
    " best.distance FROM ("
    " SELECT DISTINCT ON (c.document_id) d.id, d.title, d.tags, d.external_id, c.content,"
    " {distance} AS distance"
    " FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {doc_filter}"
    " ORDER BY c.document_id, distance, c.ordinal"
    ") AS best ORDER BY best.distance, best.id LIMIT $2"
)


@dataclass(frozen=True, slots=True)
class _Queries:
    """The statements that depend on the embedding dimension (only an int is filled in)."""

    nearest: str
    exact: str

    @classmethod
    @functools.cache
    def for_dimensions(cls, dimensions: int) -> _Queries:
        fill = {
            "distance": distance_sql(dimensions, "c.embedding", "$1"),
            "doc_filter_nearest": document_filter("nearest.document_id", "$4"),
            "doc_filter": documents_filter("d", "$3"),
        }
        return cls(nearest=_NEAREST.format_map(fill), exact=_EXACT.format_map(fill))


class DocumentStore:
    """Queries over `documents` and `chunks` through any `ConnectionSource`."""

    def __init__(
        self,
        source: ConnectionSource,
        embedder: TextEmbedder,
        *,
        session_ef_search: int | None = None,
    ) -> None:
        """`session_ef_search`: the `hnsw.ef_search` every connection of `source` already
        has for its session (`kb_mcp.db.vectors.init_connection` sets `SESSION_EF_SEARCH`);
        a search needing no more candidates than that is one statement, others (and every
        search when it is None) set it for a transaction of their own."""
        self._source = source
        self._embedder = embedder
        self._sql = _Queries.for_dimensions(embedder.dimensions)
        self._writer = DocumentWriter.for_dimensions(embedder.dimensions)
        self._session_ef_search = session_ef_search

    @property
    def dimensions(self) -> int:
        """The embedding dimension of the stored vectors."""
        return self._embedder.dimensions

    async def add_document(
        self,
        *,
        title: str,
        content: str,
        tags: Sequence[str],
        metadata: dict[str, Any],
        external_id: str | None = None,
        dedupe: bool = False,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> AddedDocument:
        """Embed the chunks, then store the document and its chunks in one transaction.

        With `external_id`, an equal document is left alone and a different one replaced
        in place; without one and with `dedupe`, identical content is not stored twice
        (see the module docstring).
        """
        fields = DocumentFields(title=title, content=content, tags=list(tags), metadata=metadata)
        stored: dict[str, list[float]] = {}
        if external_id is not None:
            async with database_errors("add"), self._source.acquire() as conn:
                row = await conn.fetchrow(_BY_EXTERNAL_ID, external_id, namespace)
                if row is not None and not fields.same_as(row):
                    stored = await stored_vectors(conn, row["id"], row["title"])
            if row is not None and fields.same_as(row):
                return AddedDocument(id=row["id"], chunks=int(row["chunks"]), status="unchanged")
        vectors = await embed_chunks(self._embedder, title, content, stored)

        async def write(conn: AnyConnection) -> AddedDocument | Unwritten[AddedDocument]:
            if external_id is not None:
                return await self._upsert(conn, namespace, external_id, fields, vectors)
            if dedupe:
                await lock_content(conn, content, namespace)
                existing = await find_identical(conn, content, namespace)
                if existing is not None:
                    return Unwritten(
                        AddedDocument(existing.id, existing.chunks, "duplicate", stored=existing)
                    )
            doc_id = await self._writer.insert(conn, fields, vectors, namespace=namespace)
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
    ) -> AddedDocument | Unwritten[AddedDocument]:
        """Create, leave or replace the document of `external_id`, under the key's lock."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"{_EXTERNAL_ID_LOCK}{namespace}:{external_id}",
        )
        row = await conn.fetchrow(_BY_EXTERNAL_ID + " FOR UPDATE", external_id, namespace)
        if row is None:
            doc_id = await self._writer.insert(conn, fields, vectors, external_id, namespace)
            return AddedDocument(doc_id, len(vectors), "created", embedded=vectors.embedded)
        if fields.same_as(row):
            return Unwritten(AddedDocument(row["id"], int(row["chunks"]), "unchanged"))
        await self._writer.replace(conn, row["id"], fields, vectors)
        return AddedDocument(
            row["id"], len(vectors), "updated", embedded=vectors.embedded, reused=vectors.reused
        )

    async def cursor_key(self) -> bytes:
        """The key that signs `kb_list` cursors, shared by every task (migration 0002)."""
        async with database_errors("list"), self._source.acquire() as conn:
            key = await conn.fetchval("SELECT key FROM cursor_keys WHERE id")
        if not key:
            raise DatabaseError("database has no cursor key (migration 0002 not applied)")
        return str(key).encode("ascii")

    async def search(
        self,
        query: str,
        *,
        limit: int,
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> list[SearchHit]:
        """Documents ranked by their best chunk's cosine similarity to the query.

        `where` (default: the default namespace; `tags` is shorthand for its `tags_all`)
        filters the HNSW candidates; when fewer than `limit` documents pass, the search is
        exact over the chunks of the documents that pass, so a filter never hides a match.
        """
        flt = where or DocumentFilter.of(tags=tags)
        vector = await self.query_vector(query)
        async with database_errors("search"), self._source.acquire() as conn:
            candidates = search_candidates(limit)
            sql, args = bind(self._sql.nearest, (vector, candidates, limit, flt.namespace), flt)
            rows = await self.fetch_nearest(conn, sql, *args, candidates=candidates)
            if len(rows) < limit:
                # Few documents, few passing the filter, or long ones filled every slot.
                sql, args = bind(self._sql.exact, (vector, limit, flt.namespace), flt)
                rows = await conn.fetch(sql, *args)
        return [
            SearchHit(
                id=row["id"],
                title=row["title"],
                snippet=_snippet(row["snippet"]),
                score=round(1.0 - float(row["distance"]), 6),
                tags=list(row["tags"]),
                external_id=row["external_id"],
            )
            for row in rows
        ]

    async def query_vector(self, query: str) -> list[float]:
        """The query's embedding, as the vector parameter the search statements take."""
        return vector_param(await self._embedder.embed_one(query))

    async def fetch_nearest(
        self, conn: AnyConnection, statement: str, *args: object, candidates: int
    ) -> list[Any]:
        """Rows of `statement`, whose HNSW scan must see `hnsw.ef_search >= candidates`.

        One statement when the session already has enough (`session_ef_search`); else
        `set_config(..., true)` and the statement in a transaction of their own.
        """
        if self._session_ef_search is not None and candidates <= self._session_ef_search:
            return list(await conn.fetch(statement, *args))
        async with conn.transaction():
            await conn.execute("SELECT set_config('hnsw.ef_search', $1, true)", str(candidates))
            return list(await conn.fetch(statement, *args))

    async def get_document(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> Document | None:
        """One document with its full content, or None: by id (in `namespace`, when given),
        or by `external_id` in `namespace` (default: the default namespace)."""
        if document_id is not None:
            key: tuple[object, ...] = (document_id, namespace)
            where = "d.id = $1 AND ($2::text IS NULL OR d.namespace = $2)"
        else:
            key = (external_id, namespace or DEFAULT_NAMESPACE)
            where = "d.external_id = $1 AND d.namespace = $2"
        async with database_errors("get"), self._source.acquire() as conn:
            row = await conn.fetchrow(_GET + where, *key)
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
            namespace=row["namespace"],
            external_id=row["external_id"],
        )

    async def list_documents(
        self,
        *,
        limit: int,
        cursor: PageCursor | None = None,
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> DocumentPage:
        """A page of documents, newest first, and how many pass the filter in all."""
        flt = where or DocumentFilter.of(tags=tags)
        after_time = cursor.created_at if cursor else None
        after_id = cursor.id if cursor else None
        predicate, params = flt.predicate("d", 5)
        # The filter's SQL is fixed text; every value is a parameter.
        page_sql = (
            "SELECT id, title, tags, created_at, updated_at, namespace, external_id "  # noqa: S608
            f"FROM documents d WHERE namespace = $1 AND {predicate} "
            "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid)) "
            "ORDER BY created_at DESC, id DESC LIMIT $4"
        )
        count_predicate, count_params = flt.predicate("d", 2)
        count_sql = f"SELECT count(*) FROM documents d WHERE namespace = $1 AND {count_predicate}"  # noqa: S608
        async with database_errors("list"), self._source.acquire() as conn:
            rows = await conn.fetch(
                page_sql, flt.namespace, after_time, after_id, limit + 1, *params
            )
            total = await conn.fetchval(count_sql, flt.namespace, *count_params)
        page = [
            DocumentSummary(
                id=row["id"],
                title=row["title"],
                tags=list(row["tags"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                namespace=row["namespace"],
                external_id=row["external_id"],
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        next_cursor = PageCursor(page[-1].created_at, page[-1].id) if more and page else None
        return DocumentPage(documents=page, total=int(total), next_cursor=next_cursor)

    async def delete_document(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> bool:
        """Delete a document and its chunks (by id or by key, as `get_document` finds it);
        False when there was none."""
        if document_id is not None:
            key: tuple[object, ...] = (document_id, namespace)
            where = "id = $1 AND ($2::text IS NULL OR namespace = $2)"
        else:
            key = (external_id, namespace or DEFAULT_NAMESPACE)
            where = "external_id = $1 AND namespace = $2"
        async with database_errors("delete"), self._source.acquire() as conn:
            deleted: UUID | None = await conn.fetchval(
                f"DELETE FROM documents WHERE {where} RETURNING id",  # noqa: S608 (fixed text)
                *key,
            )
        if deleted is not None:
            log.info("kb.document_deleted", document_id=str(deleted))
        return deleted is not None


_GET = (
    "SELECT d.id, d.title, d.content, d.tags, d.metadata::text AS metadata, "
    "d.created_at, d.updated_at, d.namespace, d.external_id, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
    "FROM documents d WHERE "
)


def _snippet(text: str) -> str:
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text.rfind(" ", 0, SNIPPET_CHARS)
    return text[: cut if cut > SNIPPET_CHARS // 2 else SNIPPET_CHARS].rstrip() + "\u2026"
