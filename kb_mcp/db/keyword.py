"""The keyword ranking in SQL: IDF-weighted coverage of the query's terms, per document.

A parsed query (`kb_mcp.db.querytext`) reaches PostgreSQL as two `text[]` parameters, its
terms and its exclusions; each becomes `phraseto_tsquery('english', ...)` there (stop
words give empty queries, dropped). Documents are found through their body (the chunks'
`search_vector`, 0003) and their title and tags (`documents.keyword_fields`, 0007).

The score of a document, in [0, 1] and comparable across queries:

- each term t weighs its BM25 inverse document frequency,
  `idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))` (N documents searched, n(t) of them
  holding t), so a rare term (`40P01`) outweighs common ones (`mean`, `error`);
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

Ties go to the best passage's term frequency (`ts_rank`: 6x cheaper a chunk than cover
density, `ts_rank_cd`, and every chunk holding a term is ranked), then id.
A document holding an exclusion (in body, title or tags) is never a candidate, in any
mode: the exclusions are looked up once (an OR of at most 8 terms in the GIN indexes)
and the matching documents dropped. Cost: one pass over the chunks holding any term, one
`@@` per term on each (the terms are bounded), one over the matching titles; never a
scan driven by a negation.

Every document-level condition (the namespace, the filter of `kb_mcp.db.filters` and the
exclusions) is assembled by `candidate_filter`, the one place a predicate on documents goes.
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
_EXCLUDED = " AND NOT EXISTS (SELECT 1 FROM excluded x WHERE x.document_id = {document})"


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
    return hook + _EXCLUDED.format_map({"document": document})


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
    " body AS MATERIALIZED ("
    "  SELECT c.document_id, c.ordinal,"
    "  ARRAY(SELECT t.i FROM terms t WHERE c.search_vector @@ t.q) AS found,"
    "  ts_rank(c.search_vector, a.q) AS density"
    "  FROM chunks c, anyq a WHERE c.search_vector @@ a.q AND {body_filter}),"
    " fields AS ("
    "  SELECT d.id AS document_id, ARRAY(SELECT t.i FROM terms t WHERE d.keyword_fields @@ t.q)"
    "  AS found FROM documents d, anyq a WHERE d.keyword_fields @@ a.q AND {fields_filter}),"
    " doc_terms AS ("
    "  SELECT m.document_id, m.i, bool_or(m.in_fields) AS in_fields FROM ("
    "   SELECT document_id, unnest(found) AS i, false AS in_fields FROM body"
    "   UNION ALL SELECT document_id, unnest(found), true FROM fields) AS m"
    "  GROUP BY m.document_id, m.i),"
    " searched AS MATERIALIZED (SELECT count(*) AS n FROM documents d WHERE {searched_filter}),"
    " idf AS ("
    "  SELECT t.i, ln(1 + (greatest(s.n, coalesce(f.n, 0)) - coalesce(f.n, 0) + 0.5)"
    "  / (coalesce(f.n, 0) + 0.5)) AS w"
    "  FROM terms t CROSS JOIN searched s LEFT JOIN ("
    "   SELECT i, count(*) AS n FROM doc_terms GROUP BY i) AS f ON f.i = t.i),"
    " scored AS ("
    "  SELECT dt.document_id, sum(w.w) / (SELECT sum(w) FROM idf) AS coverage,"
    "  coalesce(sum(w.w) FILTER (WHERE dt.in_fields), 0) / (SELECT sum(w) FROM idf) AS fields"
    "  FROM doc_terms dt JOIN idf w ON w.i = dt.i GROUP BY dt.document_id),"
    " best_passage AS ("
    "  SELECT DISTINCT ON (b.document_id) b.document_id, b.ordinal, b.density FROM body b"
    "  ORDER BY b.document_id,"
    "  (SELECT coalesce(sum(w.w), 0) FROM idf w WHERE w.i = ANY (b.found)) DESC,"
    "  b.density DESC, b.ordinal),"
    " kw AS ("
    "  SELECT s.document_id, ((3 * s.coverage + s.fields) / 4)::float8 AS score,"
    "  p.ordinal, p.density"
    "  FROM scored s LEFT JOIN best_passage p ON p.document_id = s.document_id"
    "  ORDER BY score DESC, p.density DESC NULLS LAST, s.document_id LIMIT {depth})"
)


def keyword_ctes(*, terms: str, negations: str, namespace: str, depth: str) -> str:
    """`KEYWORD_CTES` filled with the statement's parameter names."""
    return KEYWORD_CTES.format_map(
        {
            "terms": terms,
            "negations": negations,
            "q_term": _TSQUERY.format("u.t"),
            "q_neg": _TSQUERY.format("n"),
            "body_filter": candidate_filter("c.document_id", namespace=namespace),
            "fields_filter": candidate_filter("d.id", namespace=namespace, alias="d"),
            "searched_filter": candidate_filter("d.id", namespace=namespace, alias="d"),
            "depth": depth,
        }
    )
