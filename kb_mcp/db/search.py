"""Hybrid search: full-text and vector rankings over chunks, fused by reciprocal rank.

Three modes, one result shape (`RankedHit`):

- `vector`: `DocumentStore.search` (cosine similarity of each document's best chunk).
- `keyword`: PostgreSQL full text over `chunks.search_vector` (migration 0003, GIN index).
  The query goes through `websearch_to_tsquery('english', ...)`, so `"quoted phrases"`
  must appear in that order and `-word` excludes. Documents having every word come
  first and alone; when none has them all, documents having any of the words are ranked
  (more matches rank higher). The all-words pass is selective, so it is fast; the
  any-word pass visits every chunk holding any of the words. Each document is ranked by
  its best chunk's `ts_rank_cd`.
- `hybrid` (default): both rankings (`limit` by vector, `depth` by keyword), fetched
  concurrently on two connections, fused
  with weighted reciprocal rank fusion, `sum(w / (k + rank))`, normalised so a document
  first in both lists scores 1.0. A hit says which signals matched: `vector` when it was
  among the vector candidates, `keyword` when its text matched the query's words.

The fusion constants (`FusionWeights`) were chosen by measurement on
`bench/bench_retrieval.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from kb_mcp.db.documents import DocumentStore, SearchHit, _snippet
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import ConnectionSource

__all__ = [
    "SEARCH_MODES",
    "FusionWeights",
    "HybridSearch",
    "KeywordHit",
    "RankedHit",
    "SearchMode",
    "fuse",
]

SearchMode = Literal["hybrid", "vector", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "vector", "keyword")

# {tsquery}: one of the two fixed expressions below. $1 query text, $2 documents to return,
# $3 tags every document must have (or NULL). Only the best $2 documents are joined to
# their row and passage text (reading text for every matching chunk is the slow part).
_KEYWORD = (
    "SELECT d.id, d.title, d.tags, c.content AS snippet, top.rank FROM ("
    " SELECT best.document_id, best.ordinal, best.rank FROM ("
    "  SELECT DISTINCT ON (c.document_id) c.document_id, c.ordinal,"
    "  ts_rank_cd(c.search_vector, q.query) AS rank"
    "  FROM chunks c, (SELECT {tsquery} AS query) AS q"
    "  WHERE c.search_vector @@ q.query AND ($3::text[] IS NULL OR EXISTS ("
    "   SELECT 1 FROM documents t WHERE t.id = c.document_id AND t.tags @> $3::text[]))"
    "  ORDER BY c.document_id, rank DESC, c.ordinal"
    " ) AS best ORDER BY best.rank DESC, best.document_id LIMIT $2"
    ") AS top JOIN documents d ON d.id = top.document_id "
    "JOIN chunks c ON c.document_id = top.document_id AND c.ordinal = top.ordinal "
    "ORDER BY top.rank DESC, d.id"
)
_EVERY_WORD = "websearch_to_tsquery('english', $1)"
_ANY_WORD = (
    "regexp_replace(websearch_to_tsquery('english', $1)::text, ' & (?=[^!])', ' | ', 'g')::tsquery"
)
_KEYWORD_ALL = _KEYWORD.format_map({"tsquery": _EVERY_WORD})
_KEYWORD_ANY = _KEYWORD.format_map({"tsquery": _ANY_WORD})


@dataclass(frozen=True, slots=True)
class RankedHit:
    """A document found by one or both signals, best passage as its snippet."""

    id: UUID
    title: str
    snippet: str
    score: float
    tags: list[str]
    matched: tuple[str, ...]
    vector_score: float | None = None
    keyword_score: float | None = None


@dataclass(frozen=True, slots=True)
class FusionWeights:
    """Reciprocal rank fusion: `vector / (k + rank_v) + keyword / (k + rank_k)`.

    The defaults were picked on the tuning half of `bench/bench_retrieval.py` (MRR 0.462
    against 0.442 for the textbook k=60 with equal weights); its figures are reported on
    the other half.
    """

    vector: float = 0.5
    keyword: float = 1.0
    k: int = 10


@dataclass(frozen=True, slots=True)
class KeywordHit:
    id: UUID
    title: str
    snippet: str
    rank: float
    tags: list[str]


class HybridSearch:
    """Search in any of `SEARCH_MODES` over one knowledge base."""

    def __init__(
        self,
        source: ConnectionSource,
        store: DocumentStore,
        *,
        weights: FusionWeights | None = None,
        depth: int = 50,
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._source = source
        self._store = store
        self._weights = weights or FusionWeights()
        self._depth = depth

    async def search(
        self,
        query: str,
        *,
        limit: int,
        mode: SearchMode = "hybrid",
        tags: Sequence[str] | None = None,
    ) -> list[RankedHit]:
        """Documents ranked for `query` by `mode`, best first."""
        if mode == "vector":
            hits = await self._store.search(query, limit=limit, tags=tags)
            return [_from_vector(hit) for hit in hits]
        if mode == "keyword":
            found = await self.keyword(query, limit=limit, tags=tags)
            return [_from_keyword(hit) for hit in found]
        if mode != "hybrid":
            raise ValueError(f"unknown search mode {mode!r}")
        # The vector side asks for what mode=vector would (its cost grows with the HNSW
        # candidate count); the keyword side, cheaper, looks deeper.
        depth = max(self._depth, limit)
        # Both run to the end, then the first failure (if any) is raised: an asyncio
        # TaskGroup would cancel its parent task on a failure, which the MCP SDK's anyio
        # cancel scopes take for a cancellation of the whole request.
        vector, keyword = await asyncio.gather(
            self._store.search(query, limit=limit, tags=tags),
            self.keyword(query, limit=depth, tags=tags),
            return_exceptions=True,
        )
        if isinstance(vector, BaseException):
            raise vector
        if isinstance(keyword, BaseException):
            raise keyword
        return fuse(vector, keyword, limit=limit, weights=self._weights)

    async def keyword(
        self, query: str, *, limit: int, tags: Sequence[str] | None = None
    ) -> list[KeywordHit]:
        """Documents whose chunks match the query's words, by their best chunk's rank."""
        async with database_errors("search"), self._source.acquire() as conn:
            tag_filter = list(tags) if tags else None
            rows = await conn.fetch(_KEYWORD_ALL, query, limit, tag_filter)
            if not rows:
                rows = await conn.fetch(_KEYWORD_ANY, query, limit, tag_filter)
        return [
            KeywordHit(
                id=row["id"],
                title=row["title"],
                snippet=row["snippet"],
                rank=float(row["rank"]),
                tags=list(row["tags"]),
            )
            for row in rows
        ]


def fuse(
    vector: Sequence[SearchHit],
    keyword: Sequence[KeywordHit],
    *,
    limit: int,
    weights: FusionWeights,
) -> list[RankedHit]:
    """Weighted reciprocal rank fusion of two rankings (each best first)."""
    best = weights.vector / (weights.k + 1) + weights.keyword / (weights.k + 1)
    by_vector = {hit.id: (rank, hit) for rank, hit in enumerate(vector, start=1)}
    by_keyword = {hit.id: (rank, hit) for rank, hit in enumerate(keyword, start=1)}
    fused: list[tuple[float, int, RankedHit]] = []
    for doc_id in by_vector.keys() | by_keyword.keys():
        v = by_vector.get(doc_id)
        kw = by_keyword.get(doc_id)
        score = 0.0
        if v is not None:
            score += weights.vector / (weights.k + v[0])
        if kw is not None:
            score += weights.keyword / (weights.k + kw[0])
        # The passage of whichever signal ranked the document higher.
        if kw is not None and (v is None or kw[0] < v[0]):
            title, tags, snippet = kw[1].title, kw[1].tags, _snippet(kw[1].snippet)
        else:
            assert v is not None
            title, tags, snippet = v[1].title, v[1].tags, v[1].snippet
        hit = RankedHit(
            id=doc_id,
            title=title,
            snippet=snippet,
            score=round(score / best, 6),
            tags=tags,
            matched=tuple(
                name for name, found in (("vector", v), ("keyword", kw)) if found is not None
            ),
            vector_score=v[1].score if v is not None else None,
            keyword_score=round(kw[1].rank, 6) if kw is not None else None,
        )
        tie = min(v[0] if v else len(vector) + 1, kw[0] if kw else len(keyword) + 1)
        fused.append((score, tie, hit))
    fused.sort(key=lambda item: (-item[0], item[1], str(item[2].id)))
    return [hit for _, _, hit in fused[:limit]]


def _from_vector(hit: SearchHit) -> RankedHit:
    return RankedHit(
        id=hit.id,
        title=hit.title,
        snippet=hit.snippet,
        score=hit.score,
        tags=hit.tags,
        matched=("vector",),
        vector_score=hit.score,
    )


def _from_keyword(hit: KeywordHit) -> RankedHit:
    return RankedHit(
        id=hit.id,
        title=hit.title,
        snippet=_snippet(hit.snippet),
        score=round(hit.rank, 6),
        tags=hit.tags,
        matched=("keyword",),
        keyword_score=round(hit.rank, 6),
    )
