"""The HNSW grid of `bench_search`: recall@10 and latency by `ef_search`, `m`, `ef_construction`.

On data already loaded, the exact answers are computed once (index scans off) and every
index of the grid is built in turn on the same rows (only the index is dropped and
rebuilt). For each index and each `ef_search`:

- `chunks_recall`: the index's 10 nearest chunks at that `hnsw.ef_search` against the
  exact 10 nearest (sequential scans off, so the index answers);
- `documents_recall`: what `kb_search` returns (the store's own statement, the index asked
  for that many candidate chunks at that `hnsw.ef_search`, the exact statement when fewer
  than 10 documents come back, as `DocumentStore.search` does) against exact search;
- `search`: p50/p99 of that document search (query vectors precomputed, one connection),
  and whether the planner answers it through the index (`kb_search_uses_index`: with
  incompressible vectors stored out of line the heap looks small and a sequential scan
  cheap to it).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench import latency_summary, print_table
from bench._search_measures import postgres_rss_mib, storage_mib
from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.nearest import NearestQueries
from kb_mcp.db.vectors import HNSW_EF_CONSTRUCTION, HNSW_M, chunk_index_sql, parse_vector

__all__ = ["Grid", "IndexParameters", "print_grid", "run_grid"]

_CHUNKS_NEAREST = (
    "SELECT document_id, ordinal FROM chunks ORDER BY embedding <=> $1::text::vector({n}) LIMIT $2"
)
_SET_EF_SEARCH = "SELECT set_config('hnsw.ef_search', $1, true)"


@dataclass(frozen=True, slots=True)
class IndexParameters:
    m: int
    ef_construction: int

    @property
    def label(self) -> str:
        return f"m={self.m}, ef_construction={self.ef_construction}"


def _ints(text: str | None, default: list[int]) -> list[int]:
    return [int(part) for part in text.split(",")] if text else default


@dataclass(frozen=True, slots=True)
class Grid:
    """Every index (`m` x `ef_construction`) to build, each measured at every `ef_search`."""

    ef_search: list[int]
    indexes: list[IndexParameters]

    @classmethod
    def parse(
        cls,
        ef_search: str | None,
        m: str | None,
        ef_construction: str | None,
        *,
        quick: bool,
        default_ef_search: list[int],
    ) -> Grid | None:
        """The grid the options ask for (comma-separated lists); a small one when quick."""
        if not (ef_search or m or ef_construction or quick):
            return None
        return cls(
            ef_search=_ints(ef_search, default_ef_search),
            indexes=[
                IndexParameters(m=each_m, ef_construction=each_ef)
                for each_m in _ints(m, [HNSW_M])
                for each_ef in _ints(ef_construction, [HNSW_EF_CONSTRUCTION])
            ],
        )


async def run_grid(
    pool: asyncpg.Pool[Any],
    pg_pid: int | None,
    store: DocumentStore,
    vectors: list[str],
    grid: Grid,
    *,
    dimensions: int,
    limit: int,
    built_s: float | None,
) -> list[dict[str, Any]]:
    """Every index of the grid built in turn on the loaded rows, each at every ef_search.

    The product's index, when the last size's bulk load just built it (in `built_s`), is
    measured as it is: rebuilding it would take as long again for the same graph.
    """
    exact = await exact_answers(pool, store, vectors, dimensions=dimensions, limit=limit)
    rows: list[dict[str, Any]] = []
    product = IndexParameters(m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
    for position, parameters in enumerate(grid.indexes):
        if position == 0 and parameters == product and built_s is not None:
            built = {
                "m": parameters.m,
                "ef_construction": parameters.ef_construction,
                "hnsw_build_s": built_s,
                "storage": await storage_mib(pool),
            }
        else:
            built = await build_index(pool, pg_pid, dimensions=dimensions, parameters=parameters)
        for ef_search in grid.ef_search:
            measured = await measure_ef_search(
                pool, store, exact, ef_search=ef_search, dimensions=dimensions, limit=limit
            )
            row = {**built, **measured}
            rows.append(row)
            # Progress on stderr: a long grid's finished cells survive an interrupted run.
            sys.stderr.write(json.dumps({"grid_cell": row}, sort_keys=True) + "\n")
            sys.stderr.flush()
    return rows


def print_grid(rows: list[dict[str, Any]], *, data: str, limit: int) -> None:
    print_table(
        f"HNSW grid on the last size ({data} data; recall@{limit} against exact search; "
        "search = kb_search's statement at that ef_search)",
        [
            "m",
            "ef_construction",
            "build s",
            "index MiB",
            "ef_search",
            "recall chunks",
            "recall kb_search",
            "p50 ms",
            "p99 ms",
            "exact fallbacks",
            "index used",
        ],
        [
            [
                g["m"],
                g["ef_construction"],
                g["hnsw_build_s"],
                g["storage"]["hnsw_index_mib"],
                g["ef_search"],
                g["chunks_recall"],
                g["documents_recall"],
                g["search"]["p50_ms"],
                g["search"]["p99_ms"],
                g["exact_fallbacks"],
                "yes" if g["kb_search_uses_index"] else "no",
            ]
            for g in rows
        ],
    )


@dataclass(frozen=True, slots=True)
class ExactAnswers:
    """Query vectors (pgvector text) and their exact 10 nearest chunks and documents."""

    vectors: list[str]
    chunks: list[set[tuple[Any, ...]]]
    documents: list[set[Any]]


async def exact_answers(
    pool: asyncpg.Pool[Any],
    store: DocumentStore,
    vectors: Sequence[str],
    *,
    dimensions: int,
    limit: int,
) -> ExactAnswers:
    """The exact nearest chunks and documents of every query vector (no index)."""
    chunk_sql = _CHUNKS_NEAREST.format(n=dimensions)
    chunks: list[set[tuple[Any, ...]]] = []
    documents: list[set[Any]] = []
    async with pool.acquire() as conn:
        for vector in vectors:
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                chunks.append({tuple(r) for r in await conn.fetch(chunk_sql, vector, limit)})
            truth = await conn.fetch(
                NearestQueries.for_dimensions(store.dimensions).exact,
                parse_vector(vector),
                limit,
                "default",
            )
            documents.append({r["id"] for r in truth})
    return ExactAnswers(list(vectors), chunks, documents)


async def build_index(
    pool: asyncpg.Pool[Any], pg_pid: int | None, *, dimensions: int, parameters: IndexParameters
) -> dict[str, Any]:
    """Drop the chunk index and build it with `parameters`: seconds, size, memory."""
    before = postgres_rss_mib(pg_pid)
    async with pool.acquire() as conn:
        await conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        began = time.perf_counter()
        await conn.execute(
            chunk_index_sql(dimensions, m=parameters.m, ef_construction=parameters.ef_construction)
        )
        seconds = time.perf_counter() - began
        await conn.execute("RESET maintenance_work_mem")
        await conn.execute("ANALYZE chunks")
    return {
        "m": parameters.m,
        "ef_construction": parameters.ef_construction,
        "hnsw_build_s": round(seconds, 1),
        "storage": await storage_mib(pool),
        "postgres_rss_mib_before_build": before,
        "postgres_rss_mib_after_build": postgres_rss_mib(pg_pid),
    }


async def measure_ef_search(
    pool: asyncpg.Pool[Any],
    store: DocumentStore,
    exact: ExactAnswers,
    *,
    ef_search: int,
    dimensions: int,
    limit: int,
) -> dict[str, Any]:
    """Recall@`limit` (chunks, documents) and document-search latency at one `ef_search`."""
    chunk_sql = _CHUNKS_NEAREST.format(n=dimensions)
    chunk_hits = document_hits = fallbacks = 0
    latencies: list[float] = []
    async with pool.acquire() as conn:
        for vector in exact.vectors[:5]:  # warm the plan and the index pages
            await _search(conn, store, vector, ef_search=ef_search, limit=limit)
        for vector, documents in zip(exact.vectors, exact.documents, strict=True):
            began = time.perf_counter()
            rows, fell_back = await _search(conn, store, vector, ef_search=ef_search, limit=limit)
            latencies.append(time.perf_counter() - began)
            fallbacks += fell_back
            document_hits += len({r["id"] for r in rows} & documents)
        async with conn.transaction():
            await conn.execute(_SET_EF_SEARCH, str(ef_search))
            plan = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) {NearestQueries.for_dimensions(store.dimensions).nearest}",
                parse_vector(exact.vectors[0]),
                ef_search,
                limit,
                "default",
            )
        for vector, chunks in zip(exact.vectors, exact.chunks, strict=True):
            async with conn.transaction():
                await conn.execute(_SET_EF_SEARCH, str(ef_search))
                await conn.execute("SET LOCAL enable_seqscan = off")  # the index's own recall
                found = {tuple(r) for r in await conn.fetch(chunk_sql, vector, limit)}
            chunk_hits += len(found & chunks)
    total = limit * len(exact.vectors)
    return {
        "ef_search": ef_search,
        "chunks_recall": round(chunk_hits / total, 4),
        "documents_recall": round(document_hits / total, 4),
        "exact_fallbacks": fallbacks,
        "kb_search_uses_index": "chunks_embedding_hnsw_idx" in str(plan),
        "search": latency_summary(latencies),
    }


async def _search(
    conn: asyncpg.pool.PoolConnectionProxy[Any],
    store: DocumentStore,
    vector: str,
    *,
    ef_search: int,
    limit: int,
) -> tuple[list[asyncpg.Record], bool]:
    """`DocumentStore.search` without a tag filter at `ef_search` candidates; fell back?"""
    async with conn.transaction():
        await conn.execute(_SET_EF_SEARCH, str(ef_search))
        rows = await conn.fetch(
            NearestQueries.for_dimensions(store.dimensions).nearest,
            parse_vector(vector),
            ef_search,
            limit,
            "default",
        )
    if len(rows) >= limit:
        return rows, False
    return await conn.fetch(
        NearestQueries.for_dimensions(store.dimensions).exact,
        parse_vector(vector),
        limit,
        "default",
    ), True
