"""Duplicate detection: identical content by hash, near-duplicates by embedding similarity.

- Identical: `documents.content_hash` is computed by the database (`kb_content_hash`,
  migration 0003: SHA-256 of the content with runs of whitespace folded to one space and
  the ends trimmed); a lookup hashes the candidate content with the same SQL function, so
  Python and the database can never disagree on what "identical" means.
- Near: a document's vector is the mean of its chunk vectors; the candidates are the
  documents owning the chunks nearest to it (HNSW when the index exists), and each
  candidate's similarity is `1 - cosine distance` between the two mean vectors.

Racing identical adds store one document: `DocumentStore.add_document(dedupe=True)` takes
`lock_content` (a transaction-scoped advisory lock on the content hash) and looks again
with `find_identical` in the transaction that inserts, so the lookup and the insert are
one step for a given content. Why a lock and not a unique index on `content_hash`:
identity by content is only for adds without an `external_id` (a caller's key names its
document, and two keyed documents may hold the same text), and databases upgraded from
before migration 0003 may already hold identical copies, which a unique index would refuse.
`DuplicateFinder.identical` is the lock-free pre-check that spares the embedding call.

The lookup is planned for its own arguments, every time (`plan_cache_mode =
force_custom_plan`, for its transaction only). asyncpg prepares a statement once per
connection, and after five executions PostgreSQL may keep one generic plan for it; made
while the table was nearly empty, that plan was a scan of the namespace testing every
row's hash, kept as the table grew: 1,000 adds into a new knowledge base spent 55 s of
database time in this lookup (`bench_bulk`; with custom plans, each lookup is one probe of
the hash index). Planning it costs a fraction of a millisecond; the setting costs one
round trip, and the pre-check a transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import AnyConnection, ConnectionSource
from kb_mcp.db.vectors import check_dimensions, query_vector_sql

__all__ = ["DuplicateFinder", "NearDuplicate", "StoredDuplicate", "find_identical", "lock_content"]

_CANDIDATE_CHUNKS = 40
"""pgvector 0.6 returns at most `hnsw.ef_search` (default 40) rows from an index scan."""
_CONTENT_LOCK = "kb-mcp:content_hash:"
_IDENTICAL = (
    "SELECT d.id, d.title, d.tags, d.metadata::text AS metadata, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
    "FROM documents d WHERE d.content_hash = kb_content_hash($1) AND d.namespace = $2 "
    "ORDER BY d.created_at, d.id LIMIT 1"
)
_CUSTOM_PLAN = "SET LOCAL plan_cache_mode = force_custom_plan"


@dataclass(frozen=True, slots=True)
class StoredDuplicate:
    """The oldest stored document whose content is identical to the one offered."""

    id: UUID
    title: str
    chunks: int
    tags: tuple[str, ...] = ()
    metadata: str = "{}"
    """As stored (jsonb text)."""


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """A stored document similar to another one, with their similarity (1.0 identical)."""

    id: UUID
    title: str
    similarity: float


class DuplicateFinder:
    """Duplicate lookups over `documents` and `chunks`."""

    def __init__(self, source: ConnectionSource, *, dimensions: int) -> None:
        check_dimensions(dimensions)
        self._source = source
        self._near = (
            "SELECT d.id, d.title, 1 - (avg(c.embedding) <=> {v}) AS similarity "
            "FROM (SELECT DISTINCT nearest.document_id FROM ("
            "  SELECT c.document_id FROM chunks c"
            "  ORDER BY (c.embedding <=> {v}) LIMIT $3"
            " ) AS nearest WHERE nearest.document_id <> $2"
            ") AS candidate JOIN chunks c ON c.document_id = candidate.document_id "
            "JOIN documents d ON d.id = candidate.document_id "
            "WHERE d.namespace = (SELECT namespace FROM documents WHERE id = $2) "
            "GROUP BY d.id, d.title ORDER BY similarity DESC, d.id"
        ).format_map({"v": query_vector_sql("$1")})

    async def identical(self, content: str, namespace: str = "default") -> StoredDuplicate | None:
        """The oldest document of `namespace` with the same normalised content, or None
        (no lock held)."""
        async with database_errors("duplicate lookup"), self._source.acquire() as conn:
            return await find_identical(conn, content, namespace)

    async def near(
        self, document_id: UUID, *, threshold: float, limit: int = 5
    ) -> list[NearDuplicate]:
        """Other documents at least `threshold` similar to this stored one, most similar first."""
        async with database_errors("duplicate lookup"), self._source.acquire() as conn:
            mean = await conn.fetchval(
                "SELECT avg(embedding)::real[] FROM chunks WHERE document_id = $1", document_id
            )
            if mean is None:
                return []
            rows = await conn.fetch(self._near, mean, document_id, _CANDIDATE_CHUNKS)
        found = [
            NearDuplicate(
                id=row["id"], title=row["title"], similarity=round(float(row["similarity"]), 6)
            )
            for row in rows
            if float(row["similarity"]) >= threshold
        ]
        return found[:limit]


async def lock_content(conn: AnyConnection, content: str, namespace: str = "default") -> None:
    """Hold, until the transaction ends, the advisory lock of this normalised content."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || kb_content_hash($2), 0))",
        f"{_CONTENT_LOCK}{namespace}:",
        content,
    )


async def find_identical(
    conn: AnyConnection, content: str, namespace: str = "default"
) -> StoredDuplicate | None:
    """The oldest document of `namespace` with the same normalised content, or None.

    Planned for these arguments (module docstring); outside a transaction, in one of its own.
    """
    if not conn.is_in_transaction():
        async with conn.transaction(readonly=True):
            return await find_identical(conn, content, namespace)
    await conn.execute(_CUSTOM_PLAN)
    row = await conn.fetchrow(_IDENTICAL, content, namespace)
    if row is None:
        return None
    return StoredDuplicate(
        id=row["id"],
        title=row["title"],
        chunks=int(row["chunks"]),
        tags=tuple(row["tags"]),
        metadata=row["metadata"],
    )
