"""Search latency at 10,000 documents with and without filters: hybrid p50 and vector p50
side by side, in one run, through the storage layer's own statements.

10,000 synthetic documents (bench_search's hashed prose, 1536 dimensions, one to a few
chunks each) are loaded as rows in bulk, the HNSW index rebuilt, the tables analyzed.
Each document has 2 of 40 tags, metadata `{"team": one of 10, "year": 2000-2024,
"due": an ISO date}`, a creation time spread over a year; 1 % of them sit in namespace
`small`, the rest in `default`. Then, for each filter (none; a small namespace; tags
any-of and all-of; metadata equality, number range, date range; created after; all
together), the same queries (a few words of a random document, vectors computed before
the clock starts: the figures are the database's share) run through
`HybridSearch.search` in modes hybrid and vector, limit 10. It prints p50/p95 per mode
and filter, how many documents pass the filter, and the load average.

    python -m bench.bench_filters [--quick] [--json] [--documents 10000] [--queries 60]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import bench_parser, finish, latency_summary, machine, print_table
from bench._stack import open_database
from bench.bench_search import (
    DIMENSIONS,
    HashingEmbedder,
    PoolSource,
    _hashed_rows,
    _queries,
    _vocabulary,
)
from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.filters import DocumentFilter, MetadataCondition
from kb_mcp.db.migrate import apply_migrations
from kb_mcp.db.search import HybridSearch
from kb_mcp.db.vectors import SESSION_EF_SEARCH, chunk_index_sql, init_connection, vector_literal
from kb_mcp.observability.logging import configure_logging

LIMIT = 10
_NOW = datetime(2026, 1, 1, tzinfo=UTC)
_DOCUMENT = (
    "INSERT INTO documents (id, title, content, tags, metadata, created_at, updated_at,"
    " namespace, embedding) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6, $7, $8::text::vector)"
)
_INDEX_SIZES = (
    "SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes FROM pg_class c"
    " WHERE c.relname IN ('documents_metadata_idx', 'documents_namespace_created_at_id_idx',"
    " 'documents_updated_at_idx', 'documents_namespace_external_id_key', 'documents_tags_idx',"
    " 'documents_pkey') ORDER BY c.relname"
)
_CHUNK = (
    "INSERT INTO chunks (document_id, ordinal, content, embedding) "
    "VALUES ($1, $2, $3, $4::text::vector)"
)


def _filters() -> dict[str, DocumentFilter]:
    return {
        "none": DocumentFilter(),
        "namespace small (1%)": DocumentFilter(namespace="small"),
        "tags any-of 2 of 40": DocumentFilter(tags_any=("t3", "t7")),
        "tags all-of 2": DocumentFilter(tags_all=("t3", "t7")),
        "metadata team eq": DocumentFilter(metadata=(MetadataCondition("team", "eq", "team-3"),)),
        "metadata year >= 2020": DocumentFilter(metadata=(MetadataCondition("year", "gte", 2020),)),
        "metadata due date range": DocumentFilter(
            metadata=(MetadataCondition("due", "gte", _NOW - timedelta(days=30)),)
        ),
        "created after (last 36 days)": DocumentFilter(created_after=_NOW - timedelta(days=36)),
        "all together": DocumentFilter(
            tags_any=("t3", "t7"),
            metadata=(MetadataCondition("team", "eq", "team-3"),),
            created_after=_NOW - timedelta(days=180),
        ),
    }


async def _load(pool: asyncpg.Pool[Any], documents: int) -> tuple[float, list[str]]:
    rng = random.Random(22)
    vocabulary = _vocabulary(rng)
    contents: list[str] = []
    began = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        for offset in range(0, documents, 500):
            docs, chunks = [], []
            for n in range(offset, min(documents, offset + 500)):
                title, content, pieces = _hashed_rows(rng, vocabulary, n)
                contents.append(content)
                doc_id = uuid.uuid4()
                vectors = [vector_literal(vector) for _, vector in pieces]
                tags = [f"t{rng.randrange(40)}", f"t{rng.randrange(40)}"]
                metadata = {
                    "team": f"team-{rng.randrange(10)}",
                    "year": 2000 + rng.randrange(25),
                    "due": (_NOW - timedelta(days=rng.randrange(365))).date().isoformat(),
                }
                created = _NOW - timedelta(seconds=rng.randrange(365 * 86400))
                namespace = "small" if n % 100 == 0 else "default"
                docs.append(
                    (
                        doc_id,
                        title,
                        content,
                        sorted(set(tags)),
                        json.dumps(metadata),
                        created,
                        namespace,
                        vectors[0],
                    )
                )
                chunks += [
                    (doc_id, ordinal, text, v)
                    for ordinal, ((text, _), v) in enumerate(zip(pieces, vectors, strict=True))
                ]
            async with conn.transaction():
                await conn.executemany(_DOCUMENT, docs)
                await conn.executemany(_CHUNK, chunks)
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(chunk_index_sql(DIMENSIONS))
        await conn.execute("VACUUM ANALYZE documents, chunks")
    return time.perf_counter() - began, contents


async def run(documents: int, queries: int) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    embedder = HashingEmbedder(DIMENSIONS)
    async with open_database() as db:
        pool = await asyncpg.create_pool(
            **db.connect_kwargs(), min_size=1, max_size=2, init=init_connection
        )
        try:
            source = PoolSource(pool)
            await apply_migrations(source, dimensions=DIMENSIONS)
            load_s, contents = await _load(pool, documents)
            chunks = await pool.fetchval("SELECT count(*) FROM chunks")
            indexes = {
                row["name"]: round(row["bytes"] / 2**20, 2)
                for row in await pool.fetch(_INDEX_SIZES)
            }
            asked = _queries(random.Random(7), contents, queries)
            embedder.precompute(asked)
            store = DocumentStore(source, embedder, session_ef_search=SESSION_EF_SEARCH)
            search = HybridSearch(source, store)
            rows: dict[str, Any] = {}
            for name, where in _filters().items():
                passing = (await store.list_documents(limit=1, where=where)).total
                row: dict[str, Any] = {"documents": passing}
                for mode in ("hybrid", "vector"):
                    for query in asked[:3]:  # warm plans and pages
                        await search.search(query, limit=LIMIT, mode=mode, where=where)
                    latencies = []
                    for query in asked:
                        began = time.perf_counter()
                        await search.search(query, limit=LIMIT, mode=mode, where=where)
                        latencies.append(time.perf_counter() - began)
                    row[mode] = latency_summary(latencies)
                rows[name] = row
        finally:
            await pool.close()
    return {
        "documents": documents,
        "chunks": int(chunks),
        "dimensions": DIMENSIONS,
        "queries": queries,
        "load_s": round(load_s, 1),
        "index_mib": indexes,
        "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "filters": rows,
    }


def report(figures: dict[str, Any]) -> None:
    print_table(
        f"{figures['documents']} documents ({figures['chunks']} chunks, "
        f"{figures['dimensions']} dims), {figures['queries']} queries a cell, limit {LIMIT}; "
        f"loadavg after {figures['loadavg']}",
        ("filter", "docs passing", "hybrid p50 ms", "vector p50 ms", "hybrid p95", "vector p95"),
        [
            (
                name,
                row["documents"],
                row["hybrid"]["p50_ms"],
                row["vector"]["p50_ms"],
                row["hybrid"]["p95_ms"],
                row["vector"]["p95_ms"],
            )
            for name, row in figures["filters"].items()
        ],
    )
    print_table(
        "index sizes (MiB): migration 0008's, and the primary key for scale",
        ("index", "MiB"),
        list(figures["index_mib"].items()),
    )


def main() -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    host = machine()
    documents, queries = (200, 3) if args.quick else (args.documents, args.queries)
    figures = asyncio.run(run(documents, queries))
    report(figures)
    finish("bench_filters", figures, quick=args.quick, as_json=args.json, host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
