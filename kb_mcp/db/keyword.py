"""The keyword ranking in SQL: IDF-weighted coverage of the query's terms, per document.

A parsed query (`kb_mcp.db.querytext`) reaches PostgreSQL as two `text[]` parameters, its
terms and its exclusions; each becomes `phraseto_tsquery('english', ...)` there (stop
words give empty queries, dropped). Documents are found through their body (the chunks'
`search_vector`, 0003) and their title and tags (`documents.keyword_fields`, 0007; since
0009 a title or tag written as an identifier is also indexed by its words: `.`, `_`, `/`
and `:` read as spaces, camelCase split, so `unregister`, `selector` and `BaseSelector`
find `selectors.BaseSelector.unregister`, which PostgreSQL's parser reads as one token).

The score of a document, in [0, 1] and comparable across queries:

- each term t weighs its BM25 inverse document frequency,
  `idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))` (N documents in the namespace that
  the filter lets through, n(t) of them holding t; the query's exclusions drop hits, they
  do not change how rare a word is), so a rare term (`40P01`) outweighs common ones
  (`mean`, `error`);
- `coverage`: the share of the query's total weight that the document holds (in its
  body, title or tags); `fields`: the share it holds in its title or tags;
- the score is `(3 * coverage + fields) / 4`: the IDF-weighted share of the query's terms
  the document holds, a term in its title or tags counting fully, one only in its body
  3/4. A document holding every term scores at least 0.75 and outranks any holding only
  some of them, unless that one holds them in its title or tags (1.0: every term in the
  title or tags). Documents holding some of the terms follow, so `limit` hits come back
  whenever that many documents hold any term.

Why in SQL over PostgreSQL's own full text, not an extension: the deployment target is
Amazon RDS for PostgreSQL, whose extensions include pg_trgm and pgvector but none that
ranks by BM25 (ParadeDB's pg_search, VectorChord-bm25 and RUM are not offered); pg_trgm
scores trigram similarity, which knows nothing of how rare a word is. The IDF above needs
only the GIN index 0003 built, so it runs the same on RDS, in `kb-mcp dev` and in tests.

Ties go to the best passage's term frequency (`ts_rank`), then id. A document holding an
exclusion (in body, title or tags) is never a hit, in any mode: the exclusions are looked
up once (an OR of at most 8 terms in the GIN indexes) and the matching documents dropped.

Cost: which terms a document holds comes from one GIN lookup per term (the chunks holding
it, read for their document id only: no tsvector is decompressed or tested row by row),
then one aggregation per (document, term) joined once with the documents the namespace
and filter let through; passages are read and ranked (`ts_rank`) only for the `depth`
best-scoring documents (ties at the cut kept). Never a scan driven by a negation. Figures
in docs/PERFORMANCE.md ("retrieval").

Every document-level condition (the namespace, the filter of `kb_mcp.db.filters` and the
exclusions) is assembled by `candidate_filter` for the statements that meet documents one
by one; the keyword ranking uses its two parts: the filter's hook on the joined documents,
the exclusions on the scored ones.
"""

from __future__ import annotations

from kb_mcp.db.filters import document_filter, documents_filter

__all__ = [
    "EVERY_TERM_FLOOR",
    "KEYWORD_CTES",
    "candidate_filter",
    "keyword_ctes",
]

EVERY_TERM_FLOOR = 0.75
"""The least keyword score of a document holding every term of the query."""

_TSQUERY = "phraseto_tsquery('english', {})"
_NOT_EXCLUDED = "NOT EXISTS (SELECT 1 FROM excluded x WHERE x.document_id = {document})"


def candidate_filter(document: str, *, namespace: str, alias: str | None = None) -> str:
    """The SQL condition a document id `document` must meet to be a search candidate.

    `namespace` is the parameter holding the namespace searched. The document-level
    filter (`kb_mcp.db.filters`: tags, metadata, dates) is its hook: on joined documents
    `alias` when given (`documents_filter`), else on the document `document` names, one
    primary-key lookup per candidate (`document_filter`); `filters.bind` fills it. The
    exclusions come from the `excluded` CTE of the statement (`KEYWORD_CTES`), so the
    condition holds in any statement built with them. Filled with fixed SQL only.
    """
    hook = (
        documents_filter(alias, namespace)
        if alias is not None
        else document_filter(document, namespace)
    )
    return hook + " AND " + _NOT_EXCLUDED.format_map({"document": document})


# The keyword ranking as CTEs, for `WITH` in mode keyword's and the hybrid statement.
# {terms} / {negations}: the text[] parameters; {namespace}: the namespace's parameter; {depth}: how
# many documents `kw` keeps. `kw` is (document_id, score, ordinal, density) rows, best
# first, `ordinal` the best passage (NULL when only the title or tags matched).
KEYWORD_CTES = (
    " terms AS ("
    "  SELECT u.i::int AS i, {q_term} AS q FROM unnest({terms}::text[]) WITH ORDINALITY AS u(t, i)"
    "  WHERE numnode({q_term}) > 0),"
    " anyq AS (SELECT (string_agg('(' || q::text || ')', ' | '))::tsquery AS q FROM terms),"
    " negq AS (SELECT (string_agg('(' || {q_neg}::text || ')', ' | ')"
    "  FILTER (WHERE numnode({q_neg}) > 0))::tsquery AS q FROM unnest({negations}::text[]) AS n),"
    " excluded AS ("
    "  SELECT c.document_id FROM chunks c, negq WHERE c.search_vector @@ negq.q"
    "  UNION SELECT d.id FROM documents d, negq WHERE d.keyword_fields @@ negq.q),"
    # Which terms each document holds: one GIN lookup per term (no tsvector is read: a
    # lexeme's posting list answers), then the document's conditions once per document.
    " held AS ("
    "  SELECT DISTINCT c.document_id, t.i, false AS in_fields"
    "  FROM terms t JOIN chunks c ON c.search_vector @@ t.q"
    "  UNION ALL SELECT d.id, t.i, true FROM terms t JOIN documents d ON d.keyword_fields @@ t.q),"
    " doc_terms AS MATERIALIZED ("
    "  SELECT h.document_id, h.i, bool_or(h.in_fields) AS in_fields FROM held h"
    "  JOIN documents d ON d.id = h.document_id WHERE {doc_filter}"
    "  GROUP BY h.document_id, h.i),"
    " searched AS MATERIALIZED (SELECT count(*) AS n FROM documents d WHERE {searched_filter}),"
    " idf AS MATERIALIZED ("
    "  SELECT t.i, t.q, ln(1 + (greatest(s.n, coalesce(f.n, 0)) - coalesce(f.n, 0) + 0.5)"
    "  / (coalesce(f.n, 0) + 0.5)) AS w"
    "  FROM terms t CROSS JOIN searched s LEFT JOIN ("
    "   SELECT i, count(*) AS n FROM doc_terms GROUP BY i) AS f ON f.i = t.i),"
    " scored AS ("
    "  SELECT dt.document_id, sum(w.w) / (SELECT sum(w) FROM idf) AS coverage,"
    "  coalesce(sum(w.w) FILTER (WHERE dt.in_fields), 0) / (SELECT sum(w) FROM idf) AS fields"
    "  FROM doc_terms dt JOIN idf w ON w.i = dt.i GROUP BY dt.document_id),"
    # The `depth` best by score, ties at the cut kept: only their passages are read.
    " ranked AS MATERIALIZED ("
    "  SELECT r.document_id, r.score FROM ("
    "   SELECT s.document_id, ((3 * s.coverage + s.fields) / 4)::float8 AS score,"
    "   rank() OVER (ORDER BY (3 * s.coverage + s.fields) / 4 DESC) AS r FROM scored s"
    "   WHERE {not_excluded}) AS r WHERE r.r <= {depth}),"
    " best_passage AS ("
    "  SELECT DISTINCT ON (c.document_id) c.document_id, c.ordinal,"
    "  ts_rank(c.search_vector, a.q) AS density"
    "  FROM ranked r JOIN chunks c ON c.document_id = r.document_id, anyq a"
    "  WHERE c.search_vector @@ a.q"
    "  ORDER BY c.document_id,"
    "  (SELECT coalesce(sum(w.w), 0) FROM idf w WHERE c.search_vector @@ w.q) DESC,"
    "  density DESC, c.ordinal),"
    " kw AS ("
    "  SELECT r.document_id, r.score, p.ordinal, p.density"
    "  FROM ranked r LEFT JOIN best_passage p ON p.document_id = r.document_id"
    "  ORDER BY r.score DESC, p.density DESC NULLS LAST, r.document_id LIMIT {depth})"
)


def keyword_ctes(*, terms: str, negations: str, namespace: str, depth: str) -> str:
    """`KEYWORD_CTES` filled with the statement's parameter names."""
    return KEYWORD_CTES.format_map(
        {
            "terms": terms,
            "negations": negations,
            "q_term": _TSQUERY.format("u.t"),
            "q_neg": _TSQUERY.format("n"),
            "doc_filter": documents_filter("d", namespace),
            "not_excluded": _NOT_EXCLUDED.format_map({"document": "s.document_id"}),
            "searched_filter": documents_filter("d", namespace),
            "depth": depth,
        }
    )
