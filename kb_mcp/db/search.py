"""Hybrid search: full-text and vector rankings over chunks, fused by reciprocal rank.

Three modes, one result shape (`RankedHit`):

- `vector`: `DocumentStore.search` (cosine similarity of each document's best chunk).
- `keyword`: PostgreSQL full text over `chunks.search_vector` (migration 0003, GIN index).
  The query goes through `websearch_to_tsquery('english', ...)`, so `"quoted phrases"`
  must appear in that order and `-word` excludes. Documents having every word come
  first and alone; when none has them all, documents having any of the words are ranked
  (more matches rank higher). The all-words pass is selective, so it is fast; the
  any-word pass visits every chunk holding any of the words. Each document is ranked by
  its best chunk's `ts_rank_cd` (cover density) in the all-words pass and `ts_rank` (term
  frequency, 6x cheaper a chunk) in the any-word pass, so `keyword_score`s of the two
  passes are on different scales (a result list holds one pass only).
- `hybrid` (default): both rankings (`limit` by vector, `depth` by keyword) fused with
  weighted reciprocal rank fusion, `sum(w / (k + rank))`, normalised so a document first
  in both lists scores 1.0. A hit says which signals matched: `vector` when it was among
  the vector candidates, `keyword` when its text matched the query's words. The whole of
  it (both rankings, the any-word fallback, the fusion and the best `limit` documents'
  rows) is one statement on one connection (`_HYBRID`); only the passages of those
  `limit` documents are read, and only their first `SNIPPET_CHARS + 1` characters.
  `fuse` is the same fusion in Python, the statement's reference.

The fusion constants (`FusionWeights`) were chosen by measurement on
`bench/bench_retrieval.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from kb_mcp.db.documents import (
    SNIPPET_CHARS,
    DocumentStore,
    SearchHit,
    _snippet,
    search_candidates,
)
from kb_mcp.db.filters import DocumentFilter, bind, document_filter, documents_filter
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import ConnectionSource
from kb_mcp.db.vectors import distance_sql

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

_EVERY_WORD = "websearch_to_tsquery('english', $1)"
_ANY_WORD = (
    "regexp_replace(websearch_to_tsquery('english', $1)::text, ' & (?=[^!])', ' | ', 'g')::tsquery"
)
# Every word: cover density, which ranks the words close together higher; the pass is
# selective. Any word: term frequency (`ts_rank`), 6x cheaper a chunk than `ts_rank_cd`
# (300 chunks: 0.75 against 4.8 ms), and that pass ranks every chunk holding any word.
_EVERY_RANK = "ts_rank_cd"
_ANY_RANK = "ts_rank"

# A condition on chunk `c`: its document is in namespace {tags} and passes the filter
# (kb_mcp.db.filters: the one filter hook of each statement).
_TAGS_FILTER = document_filter("c.document_id", "{tags}")
# Each document's best chunk matching the tsquery {query} by {rank}, best first, the first
# {limit} (ties by document id): (document_id, ordinal, rank) rows. Mode keyword and both
# passes of the hybrid statement; {source} is what {query} is read from (joined to the
# chunks), {where} a further condition on chunk `c` (the tag filter). Filled with fixed
# SQL fragments of this module only, never user input.
_BEST_CHUNKS = (
    "SELECT b.document_id, b.ordinal, b.rank FROM ("
    " SELECT DISTINCT ON (c.document_id) c.document_id, c.ordinal,"
    " {rank}(c.search_vector, {query}) AS rank FROM chunks c, {source}"
    " WHERE c.search_vector @@ {query} AND {where}"
    " ORDER BY c.document_id, rank DESC, c.ordinal"
    ") AS b ORDER BY b.rank DESC, b.document_id LIMIT {limit}"
)
# Mode keyword, one pass ({best}: `_BEST_CHUNKS`). $1 query text, $2 documents to return,
# $3 namespace (then the filter's values, kb_mcp.db.filters). Only the best $2 documents
# are joined to their row and passage text (reading text for every matching chunk is the slow part).
_KEYWORD = (
    "SELECT d.id, d.title, d.tags, d.external_id, c.content AS snippet, top.rank"
    " FROM ({best}) AS top"
    " JOIN documents d ON d.id = top.document_id"
    " JOIN chunks c ON c.document_id = top.document_id AND c.ordinal = top.ordinal"
    " ORDER BY top.rank DESC, d.id"
)


def _keyword(tsquery: str, rank: str) -> str:
    """Mode keyword's statement for the pass of `tsquery` ranked by `rank`."""
    best = _BEST_CHUNKS.format_map(
        {
            "rank": rank,
            "query": "q.query",
            "source": f"(SELECT {tsquery} AS query) AS q",
            "where": _TAGS_FILTER.format_map({"tags": "$3"}),
            "limit": "$2",
        }
    )
    return _KEYWORD.format_map({"best": best})


_KEYWORD_ALL = _keyword(_EVERY_WORD, _EVERY_RANK)
_KEYWORD_ANY = _keyword(_ANY_WORD, _ANY_RANK)

# Hybrid search in one statement. $1 query vector (vector), $2 documents to return, $3
# query text, $4 keyword depth, $5 namespace, $6 vector
# weight, $7 keyword weight, $8 k, and for the HNSW form $9 candidate chunks.
# {vector}: one of the `_VECTOR_*` rankings below; {distance}: the cosine distance of
# c.embedding to $1 in the chunk index's form; {any_word}: `_ANY_WORD` on $3;
# {every_top}/{some_top}: the two keyword passes (`_EVERY_TOP`, `_SOME_TOP`).
# The ranks, scores and tie-break are `fuse`'s; the any-word pass runs only when no
# chunk has every word (an uncorrelated NOT EXISTS: a one-time filter).
_HYBRID = (
    "WITH vec AS ({vector}),"
    " q AS (SELECT websearch_to_tsquery('english', $3) AS every, {any_word} AS some),"
    " every_top AS ({every_top}),"
    " some_top AS ({some_top}),"
    " kw AS ("
    "  SELECT u.document_id, u.ordinal, u.rank,"
    "  row_number() OVER (ORDER BY u.rank DESC, u.document_id) AS position"
    "  FROM (SELECT * FROM every_top UNION ALL SELECT * FROM some_top) AS u),"
    " fused AS ("
    "  SELECT coalesce(v.document_id, k.document_id) AS document_id,"
    "  v.position AS vector_position, v.distance, v.ordinal AS vector_ordinal,"
    "  k.position AS keyword_position, k.rank AS keyword_rank, k.ordinal AS keyword_ordinal,"
    "  coalesce($6::float8 / ($8::int + v.position), 0)"
    "  + coalesce($7::float8 / ($8::int + k.position), 0) AS score,"
    "  least(coalesce(v.position, (SELECT count(*) FROM vec) + 1),"
    "   coalesce(k.position, (SELECT count(*) FROM kw) + 1)) AS tie"
    "  FROM vec v FULL JOIN kw k ON k.document_id = v.document_id"
    "  ORDER BY score DESC, tie, document_id LIMIT $2)"
    " SELECT f.document_id AS id, d.title, d.tags, d.external_id,"
    " left(c.content, {snippet_read}) AS snippet,"
    " f.score, f.distance, f.keyword_rank, f.vector_position IS NOT NULL AS by_vector,"
    " f.keyword_position IS NOT NULL AS by_keyword, (SELECT count(*) FROM vec) AS vector_found"
    " FROM fused f JOIN documents d ON d.id = f.document_id"
    " JOIN chunks c ON c.document_id = f.document_id AND c.ordinal = CASE"
    "  WHEN f.keyword_position IS NOT NULL"
    "   AND (f.vector_position IS NULL OR f.keyword_position < f.vector_position)"
    "  THEN f.keyword_ordinal ELSE f.vector_ordinal END"
    " ORDER BY f.score DESC, f.tie, f.document_id"
)
# Both keyword passes of the hybrid statement (`_BEST_CHUNKS`); the any-word pass runs only
# when the every-word pass found nothing (an uncorrelated NOT EXISTS: a one-time filter).
_WHEN_NO_EVERY_WORD = "NOT EXISTS (SELECT 1 FROM every_top) AND {tags}"
_KEYWORD_TAGS = _TAGS_FILTER.format_map({"tags": "$5"})
_EVERY_TOP = _BEST_CHUNKS.format_map(
    {"rank": _EVERY_RANK, "query": "q.every", "source": "q", "where": _KEYWORD_TAGS, "limit": "$4"}
)
_SOME_TOP = _BEST_CHUNKS.format_map(
    {
        "rank": _ANY_RANK,
        "query": "q.some",
        "source": "q",
        "where": _WHEN_NO_EVERY_WORD.format_map({"tags": _KEYWORD_TAGS}),
        "limit": "$4",
    }
)
# Each document's best chunk, ranked by distance (ties by id), the first $2 of them.
_VECTOR_RANKED = (
    "SELECT b.document_id, b.ordinal, b.distance,"
    " row_number() OVER (ORDER BY b.distance, b.document_id) AS position FROM ({best}) AS b"
    " ORDER BY b.distance, b.document_id LIMIT $2"
)
# Best chunks among the $9 nearest the HNSW index returns (DocumentStore.search's).
_VECTOR_NEAREST = _VECTOR_RANKED.replace(
    "{best}",
    "SELECT DISTINCT ON (n.document_id) n.document_id, n.ordinal, n.distance FROM ("
    " SELECT c.document_id, c.ordinal, {distance} AS distance"
    " FROM chunks c ORDER BY {distance} LIMIT $9"
    ") AS n WHERE {vector_filter} ORDER BY n.document_id, n.distance, n.ordinal",
)
# Exact: every chunk of the documents the filter passes.
_VECTOR_EXACT = _VECTOR_RANKED.replace(
    "{best}",
    "SELECT DISTINCT ON (c.document_id) c.document_id, c.ordinal, {distance} AS distance"
    " FROM chunks c {where} ORDER BY c.document_id, distance, c.ordinal",
)


@dataclass(frozen=True, slots=True)
class _HybridStatements:
    nearest: str
    exact: str

    @classmethod
    @functools.cache
    def for_dimensions(cls, dimensions: int) -> _HybridStatements:
        def statement(vector: str, where: str = "") -> str:
            ranking = vector.replace("{where}", where).replace("{vector_filter}", hook("n"))
            return _HYBRID.format_map(
                {
                    "vector": ranking.format_map({"distance": distance}),
                    "any_word": _ANY_WORD.replace("$1", "$3"),
                    "every_top": _EVERY_TOP,
                    "some_top": _SOME_TOP,
                    "snippet_read": str(SNIPPET_CHARS + 1),
                }
            )

        distance = distance_sql(dimensions, "c.embedding", "$1")

        def hook(chunks: str) -> str:
            return document_filter(f"{chunks}.document_id", "$5")

        return cls(
            nearest=statement(_VECTOR_NEAREST),
            exact=statement(
                _VECTOR_EXACT,
                "JOIN documents kb_d ON kb_d.id = c.document_id"
                f" WHERE {documents_filter('kb_d', '$5')}",
            ),
        )


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
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class FusionWeights:
    """Reciprocal rank fusion: `vector / (k + rank_v) + keyword / (k + rank_k)`.

    The defaults were picked on the tuning half of `bench/bench_retrieval.py` (MRR 0.55
    against 0.50 for the textbook k=60 with equal weights, with `ts_rank` in the any-word
    pass; 0.462 against 0.442 before); its figures are reported on the other half.
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
    external_id: str | None = None


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
        self._statements = _HybridStatements.for_dimensions(store.dimensions)

    async def search(
        self,
        query: str,
        *,
        limit: int,
        mode: SearchMode = "hybrid",
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> list[RankedHit]:
        """Documents ranked for `query` by `mode`, best first, among those `where` passes
        (default: the default namespace; `tags` is shorthand for its `tags_all`)."""
        flt = where or DocumentFilter.of(tags=tags)
        if mode == "vector":
            hits = await self._store.search(query, limit=limit, where=flt)
            return [_from_vector(hit) for hit in hits]
        if mode == "keyword":
            found = await self.keyword(query, limit=limit, where=flt)
            return [_from_keyword(hit) for hit in found]
        if mode != "hybrid":
            raise ValueError(f"unknown search mode {mode!r}")
        return await self.hybrid(query, limit=limit, where=flt)

    async def hybrid(
        self,
        query: str,
        *,
        limit: int,
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> list[RankedHit]:
        """`fuse` of the vector and keyword rankings, computed by one statement.

        The vector side asks for what mode=vector would (its cost grows with the HNSW
        candidate count); the keyword side, cheaper, looks `depth` deep. As in
        `DocumentStore.search`, when the HNSW candidates hold fewer than `limit`
        documents the vector ranking is exact instead.
        """
        flt = where or DocumentFilter.of(tags=tags)
        vector = await self._store.query_vector(query)
        w = self._weights
        args = (
            vector,
            limit,
            query,
            max(self._depth, limit),
            flt.namespace,
            w.vector,
            w.keyword,
            w.k,
        )
        sql = self._statements
        async with database_errors("search"), self._source.acquire() as conn:
            candidates = search_candidates(limit)
            nearest, nearest_args = bind(sql.nearest, (*args, candidates), flt)
            rows = await self._store.fetch_nearest(
                conn, nearest, *nearest_args, candidates=candidates
            )
            if (rows[0]["vector_found"] if rows else 0) < limit:
                exact, exact_args = bind(sql.exact, args, flt)
                rows = await conn.fetch(exact, *exact_args)
        best = w.vector / (w.k + 1) + w.keyword / (w.k + 1)
        return [
            RankedHit(
                id=row["id"],
                title=row["title"],
                snippet=_snippet(row["snippet"]),
                score=round(row["score"] / best, 6),
                tags=list(row["tags"]),
                matched=tuple(
                    name
                    for name, found in (
                        ("vector", row["by_vector"]),
                        ("keyword", row["by_keyword"]),
                    )
                    if found
                ),
                vector_score=(round(1.0 - float(row["distance"]), 6) if row["by_vector"] else None),
                keyword_score=(round(float(row["keyword_rank"]), 6) if row["by_keyword"] else None),
                external_id=row["external_id"],
            )
            for row in rows
        ]

    async def keyword(
        self,
        query: str,
        *,
        limit: int,
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> list[KeywordHit]:
        """Documents whose chunks match the query's words, by their best chunk's rank."""
        flt = where or DocumentFilter.of(tags=tags)
        args = (query, limit, flt.namespace)
        async with database_errors("search"), self._source.acquire() as conn:
            every, bound = bind(_KEYWORD_ALL, args, flt)
            rows = await conn.fetch(every, *bound)
            if not rows:
                some, bound = bind(_KEYWORD_ANY, args, flt)
                rows = await conn.fetch(some, *bound)
        return [
            KeywordHit(
                id=row["id"],
                title=row["title"],
                snippet=row["snippet"],
                rank=float(row["rank"]),
                tags=list(row["tags"]),
                external_id=row["external_id"],
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
        external_id=hit.external_id,
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
        external_id=hit.external_id,
    )
