"""Vector search: documents ranked by their best chunk's cosine similarity to a query.

Cosine distance over chunks; each document is ranked by its best chunk, which is returned
as the snippet; `score = 1 - cosine distance` (1.0 is identical). The HNSW index picks
candidate chunks (`hnsw.ef_search` raised to the candidate count), which pass through the
filter (`kb_mcp.db.filters`: a namespace, and tags, metadata, dates); when fewer than
`limit` documents are left, search is exact over the chunks of the documents that pass
(the planner starts from them), so a filter never hides a match.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kb_mcp.db.filters import DocumentFilter, bind, document_filter, documents_filter
from kb_mcp.db.models import SearchHit
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import AnyConnection, ConnectionSource, TextEmbedder
from kb_mcp.db.vectors import distance_sql, vector_param

__all__ = ["SNIPPET_CHARS", "NearestQueries", "VectorSearch", "search_candidates"]

SNIPPET_CHARS = 400
_MAX_CANDIDATES = 1000
"""pgvector's ceiling for `hnsw.ef_search`."""
_MIN_CANDIDATES = 100
_CANDIDATES_PER_HIT = 40
"""Chosen at 100k chunks by `bench/bench_search.py` (recall@10 0.99 at 400 candidates)."""


def search_candidates(limit: int) -> int:
    """Chunks the HNSW index is asked for (and `hnsw.ef_search`) to return `limit` documents."""
    return min(_MAX_CANDIDATES, max(_MIN_CANDIDATES, limit * _CANDIDATES_PER_HIT))


# Templates: {distance} is the cosine distance of c.embedding to $1 matching the chunk
# index (see kb_mcp.db.vectors).
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
class NearestQueries:
    """The statements that depend on the embedding dimension (only an int is filled in)."""

    nearest: str
    exact: str

    @classmethod
    @functools.cache
    def for_dimensions(cls, dimensions: int) -> NearestQueries:
        fill = {
            "distance": distance_sql(dimensions, "c.embedding", "$1"),
            "doc_filter_nearest": document_filter("nearest.document_id", "$4"),
            "doc_filter": documents_filter("d", "$3"),
        }
        return cls(nearest=_NEAREST.format_map(fill), exact=_EXACT.format_map(fill))


class VectorSearch:
    """Vector search over `chunks` through any `ConnectionSource`."""

    def __init__(
        self,
        source: ConnectionSource,
        embedder: TextEmbedder,
        *,
        session_ef_search: int | None = None,
    ) -> None:
        """`session_ef_search`: see `kb_mcp.db.documents.DocumentStore`."""
        self._source = source
        self._embedder = embedder
        self._sql = NearestQueries.for_dimensions(embedder.dimensions)
        self._session_ef_search = session_ef_search

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


def _snippet(text: str) -> str:
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text.rfind(" ", 0, SNIPPET_CHARS)
    return text[: cut if cut > SNIPPET_CHARS // 2 else SNIPPET_CHARS].rstrip() + "\u2026"
