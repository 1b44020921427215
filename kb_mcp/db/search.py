"""Search in three modes, one statement each, one score per document with a meaning.

- `keyword`: the query's terms (`kb_mcp.db.querytext`: words, `"phrases"`, `-exclusions`)
  ranked by IDF-weighted coverage over body, title and tags (`kb_mcp.db.keyword`): the
  score is in [0, 1], 0.75 or more when the document holds every term. Documents holding
  some of the terms follow those holding all of them, so a search returns `limit` hits
  whenever that many documents hold any term.
- `vector`: each document's best passage by cosine similarity (`DocumentStore.search`'s
  ranking: HNSW candidates, exact when they hold fewer than `limit` documents or when
  a filter narrows; a query with exclusions keeps to the HNSW candidates, less the
  excluded documents, so excluding cannot force a scan); the score is `1 - cosine distance`.
- `hybrid` (default): both, over the union of the vector ranking's `limit` documents and
  the keyword ranking's `depth`; the score is `keyword * k + (1 - keyword) * v`, with `k`
  the keyword score (0 when no term matched) and `v` the cosine similarity of the best
  passage (at least 0). Both parts are absolute, so the score is comparable across
  queries; how high `v` runs for unrelated text depends on the embedding model.

Every mode applies the same document-level conditions (`candidate_filter`: the
namespace, the filter of `kb_mcp.db.filters`, the query's exclusions) and returns each
hit's snippet (`kb_mcp.db.snippets`): a window of its best passage around the matched
terms, with character offsets in the document. A second, small statement reads the
passages of the hits only. `min_score` drops hits below it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from kb_mcp.db.documents import DocumentStore, search_candidates
from kb_mcp.db.filters import DocumentFilter, bind
from kb_mcp.db.keyword import candidate_filter, keyword_ctes
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import AnyConnection, ConnectionSource
from kb_mcp.db.querytext import ParsedQuery, parse_query
from kb_mcp.db.snippets import HEADLINE_OPTIONS, Snippet, build_snippet
from kb_mcp.db.vectors import distance_sql

__all__ = [
    "SEARCH_MODES",
    "HybridSearch",
    "RankedHit",
    "ScoreWeights",
    "SearchMode",
]

SearchMode = Literal["hybrid", "vector", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "vector", "keyword")

# Parameters of every statement: $1 query vector, $2 documents to return, $3 terms,
# $4 exclusions, $5 namespace, $6 keyword depth, $7 keyword weight, and for the HNSW
# form $8 candidate chunks; then the filter's values (`kb_mcp.db.filters.bind`).
_CTES = keyword_ctes(terms="$3", negations="$4", namespace="$5", depth="$6")

# Each document's best chunk by distance among the $8 nearest the HNSW index returns.
_VECTOR_NEAREST = (
    "SELECT b.document_id, b.ordinal, b.distance FROM ("
    " SELECT DISTINCT ON (n.document_id) n.document_id, n.ordinal, n.distance FROM ("
    "  SELECT c.document_id, c.ordinal, {distance} AS distance"
    "  FROM chunks c ORDER BY {distance} LIMIT $8"
    " ) AS n WHERE {nearest_filter}"
    " ORDER BY n.document_id, n.distance, n.ordinal"
    ") AS b ORDER BY b.distance, b.document_id LIMIT $2"
)
# Exact: every chunk of the candidate documents (the planner starts from the documents
# the namespace and filter let through, by their indexes).
_VECTOR_EXACT = (
    "SELECT b.document_id, b.ordinal, b.distance FROM ("
    " SELECT DISTINCT ON (c.document_id) c.document_id, c.ordinal, {distance} AS distance"
    " FROM chunks c JOIN documents fd ON fd.id = c.document_id WHERE {exact_filter}"
    " ORDER BY c.document_id, distance, c.ordinal"
    ") AS b ORDER BY b.distance, b.document_id LIMIT $2"
)
_SEARCH = (
    "WITH {ctes},"
    " vec AS ({vector}),"
    # The keyword documents the vector ranking did not reach: their best passage's distance.
    " kw_vec AS ("
    "  SELECT DISTINCT ON (c.document_id) c.document_id, c.ordinal, {distance} AS distance"
    "  FROM chunks c WHERE c.document_id IN"
    "  (SELECT document_id FROM kw EXCEPT SELECT document_id FROM vec)"
    "  ORDER BY c.document_id, distance, c.ordinal),"
    " sims AS (SELECT *, true AS by_vector FROM vec"
    "  UNION ALL SELECT *, false AS by_vector FROM kw_vec),"
    " fused AS ("
    "  SELECT s.document_id, s.distance, s.by_vector, k.score AS keyword_score,"
    "  coalesce(k.ordinal, s.ordinal) AS ordinal, k.density,"
    "  $7::float8 * coalesce(k.score, 0)"
    "  + (1 - $7::float8) * greatest(0, 1 - s.distance) AS score"
    "  FROM sims s LEFT JOIN kw k ON k.document_id = s.document_id)"
    " SELECT f.document_id AS id, d.title, d.tags, d.external_id, f.ordinal, f.score,"
    " f.distance,"
    " f.keyword_score, f.by_vector, (SELECT count(*) FROM vec) AS vector_found"
    " FROM fused f JOIN documents d ON d.id = f.document_id"
    " ORDER BY f.score DESC, f.density DESC NULLS LAST, f.document_id LIMIT $2"
)
# Mode keyword: the keyword ranking alone, `limit` ($4) deep; $3 namespace.
_KEYWORD = (
    "WITH {ctes}"
    " SELECT k.document_id AS id, d.title, d.tags, d.external_id,"
    " coalesce(k.ordinal, 0) AS ordinal,"
    " k.score, k.score AS keyword_score FROM kw k JOIN documents d ON d.id = k.document_id"
    " ORDER BY k.score DESC, k.density DESC NULLS LAST, k.document_id"
).format_map({"ctes": keyword_ctes(terms="$1", negations="$2", namespace="$3", depth="$4")})
# The passages of the hits: $1 ids, $2 ordinals, $3 terms, $4 ts_headline's options.
_PASSAGES = (
    "SELECT p.i, c.content, strpos(d.content, c.content) - 1 AS start,"
    " ts_headline('english', c.content, q.q, $4) AS headline"
    " FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS p(document_id, ordinal, i)"
    " JOIN chunks c ON c.document_id = p.document_id AND c.ordinal = p.ordinal"
    " JOIN documents d ON d.id = p.document_id,"
    " (SELECT (string_agg('(' || phraseto_tsquery('english', t)::text || ')', ' | ')"
    "  FILTER (WHERE numnode(phraseto_tsquery('english', t)) > 0))::tsquery AS q"
    "  FROM unnest($3::text[]) AS t) AS q"
)


@dataclass(frozen=True, slots=True)
class _Statements:
    nearest: str
    exact: str

    @classmethod
    @functools.cache
    def for_dimensions(cls, dimensions: int) -> _Statements:
        distance = distance_sql(dimensions, "c.embedding", "$1")

        def statement(vector: str) -> str:
            return _SEARCH.format_map(
                {
                    "ctes": _CTES,
                    "vector": vector.format_map(
                        {
                            "distance": distance,
                            "nearest_filter": candidate_filter("n.document_id", namespace="$5"),
                            "exact_filter": candidate_filter(
                                "c.document_id", namespace="$5", alias="fd"
                            ),
                        }
                    ),
                    "distance": distance,
                }
            )

        return cls(nearest=statement(_VECTOR_NEAREST), exact=statement(_VECTOR_EXACT))


@dataclass(frozen=True, slots=True)
class RankedHit:
    """A document found for a query, with the snippet of its best passage."""

    id: UUID
    title: str
    snippet: str
    score: float
    tags: list[str]
    matched: tuple[str, ...]
    vector_score: float | None = None
    keyword_score: float | None = None
    start: int = 0
    """Offset of the snippet in the document's content (characters)."""
    end: int = 0
    highlights: tuple[tuple[int, int], ...] = ()
    """Offsets of each highlighted term in the document's content."""
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """The hybrid score: `keyword * keyword_score + (1 - keyword) * vector similarity`.

    The default has the best mean MRR over the tuning halves of `bench/bench_retrieval.py`'s
    two sets (keyword weight 0.4-0.8: 0.660-0.666, flat; the halves reported were not used).
    """

    keyword: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 <= self.keyword <= 1.0:
            raise ValueError("keyword weight must be between 0 and 1")


class HybridSearch:
    """Search in any of `SEARCH_MODES` over one knowledge base."""

    def __init__(
        self,
        source: ConnectionSource,
        store: DocumentStore,
        *,
        weights: ScoreWeights | None = None,
        depth: int = 50,
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._source = source
        self._store = store
        self._weights = weights or ScoreWeights()
        self._depth = depth
        self._statements = _Statements.for_dimensions(store.dimensions)

    async def search(
        self,
        query: str,
        *,
        limit: int,
        mode: SearchMode = "hybrid",
        tags: Sequence[str] | None = None,
        min_score: float = 0.0,
        where: DocumentFilter | None = None,
    ) -> list[RankedHit]:
        """Documents ranked for `query` by `mode`, best first, scoring at least `min_score`,
        among those `where` lets through (default: the default namespace; `tags` is
        shorthand for its `tags_all`).

        Raises `ToolInputError` when the query exceeds `kb_mcp.db.querytext`'s bounds.
        """
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}")
        parsed = parse_query(query)
        flt = where or DocumentFilter.of(tags=tags)
        if mode == "keyword":
            if not parsed.terms:
                return []
            keyword_args = (list(parsed.terms), list(parsed.negations), flt.namespace, limit)
            statement, bound = bind(_KEYWORD, keyword_args, flt)
            async with database_errors("search"), self._source.acquire() as conn:
                rows = await conn.fetch(statement, *bound)
                rows = [r for r in rows if r["score"] >= min_score]
                return await self._hits(conn, rows, parsed, mode)
        vector = await self._store.query_vector(parsed.text or query)
        weight = self._weights.keyword if mode == "hybrid" else 0.0
        terms = list(parsed.terms) if mode == "hybrid" else []
        args = (vector, limit, terms, list(parsed.negations), flt.namespace, self._depth, weight)
        sql = self._statements
        exact, exact_args = bind(sql.exact, args, flt)
        async with database_errors("search"), self._source.acquire() as conn:
            if flt.narrows:
                rows = await conn.fetch(exact, *exact_args)
            else:
                candidates = search_candidates(limit)
                nearest, nearest_args = bind(sql.nearest, (*args, candidates), flt)
                rows = await self._store.fetch_nearest(
                    conn, nearest, *nearest_args, candidates=candidates
                )
                # Too few HNSW candidates: exact instead; not for exclusions, which would
                # otherwise buy a scan of every chunk by excluding the nearest documents.
                found = rows[0]["vector_found"] if rows else 0
                if found < limit and not parsed.negations:
                    rows = await conn.fetch(exact, *exact_args)
            rows = [r for r in rows if r["score"] >= min_score]
            return await self._hits(conn, rows, parsed, mode)

    async def _hits(
        self, conn: AnyConnection, rows: Sequence[Any], parsed: ParsedQuery, mode: SearchMode
    ) -> list[RankedHit]:
        if not rows:
            return []
        passages = await conn.fetch(
            _PASSAGES,
            [r["id"] for r in rows],
            [r["ordinal"] for r in rows],
            list(parsed.terms),
            HEADLINE_OPTIONS,
        )
        snippets: dict[int, Snippet] = {
            p["i"]: build_snippet(p["content"], max(0, p["start"]), p["headline"]) for p in passages
        }
        hits = []
        for i, row in enumerate(rows, start=1):
            snippet = snippets.get(i) or Snippet("", 0, 0)
            keyword = row["keyword_score"]
            by_vector = mode != "keyword" and bool(row["by_vector"])
            matched = tuple(
                name
                for name, found in (("vector", by_vector), ("keyword", keyword is not None))
                if found
            )
            hits.append(
                RankedHit(
                    id=row["id"],
                    title=row["title"],
                    snippet=snippet.text,
                    score=round(float(row["score"]), 6),
                    tags=list(row["tags"]),
                    matched=matched,
                    vector_score=(
                        round(1.0 - float(row["distance"]), 6) if mode != "keyword" else None
                    ),
                    keyword_score=round(float(keyword), 6) if keyword is not None else None,
                    start=snippet.start,
                    end=snippet.end,
                    highlights=snippet.highlights,
                    external_id=row["external_id"],
                )
            )
        return hits
