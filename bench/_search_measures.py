"""What `bench_search` measures besides latency: HNSW recall, storage, memory."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import asyncpg

from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.nearest import NearestQueries, search_candidates
from kb_mcp.db.vectors import parse_vector

__all__ = ["own_peak_rss_mib", "postgres_rss_mib", "recall", "storage_mib"]

_CHUNKS_NEAREST = (
    "SELECT document_id, ordinal FROM chunks  ORDER BY embedding <=> $1::text::vector({n}) limit $2"
)


async def recall(
    pool: asyncpg.Pool[Any],
    store: DocumentStore,
    vectors: list[str],
    *,
    dimensions: int,
    limit: int,
) -> dict[str, float]:
    """Recall@`limit` of the HNSW index against exact search, on the same query vectors.

    `chunks`: the index at the default `hnsw.ef_search` against an exact scan of chunks.
    `documents`: `DocumentStore.search`'s unfiltered statement (the index, ef_search raised
    to its candidate count, as the store sets it) against its exact statement.
    """
    chunk_sql = _CHUNKS_NEAREST.format(n=dimensions)
    candidates = search_candidates(limit)
    chunk_hits = document_hits = 0
    async with pool.acquire() as conn:
        default_ef = int(await conn.fetchval("SHOW hnsw.ef_search"))
        for vector in vectors:
            approximate = {tuple(r) for r in await conn.fetch(chunk_sql, vector, limit)}
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                exact = {tuple(r) for r in await conn.fetch(chunk_sql, vector, limit)}
            chunk_hits += len(approximate & exact)
            async with conn.transaction():
                await conn.execute("SELECT set_config('hnsw.ef_search', $1, true)", str(candidates))
                param = parse_vector(vector)  # the store's statements take a list
                found = await conn.fetch(
                    NearestQueries.for_dimensions(store.dimensions).nearest,
                    param,
                    candidates,
                    limit,
                    "default",
                )
            truth = await conn.fetch(
                NearestQueries.for_dimensions(store.dimensions).exact, param, limit, "default"
            )
            document_hits += len({r["id"] for r in found} & {r["id"] for r in truth})
    total = limit * len(vectors)
    return {
        "default_ef_search": default_ef,
        "chunks_recall": round(chunk_hits / total, 4),
        "documents_recall": round(document_hits / total, 4),
        "documents_ef_search": candidates,
    }


def postgres_rss_mib(pg_pid: int | None) -> float | None:
    """Resident memory of the postmaster and its children (shared pages counted once each)."""
    if pg_pid is None:
        return None
    total_kib = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text(encoding="utf-8").splitlines()
            )
        except (OSError, ValueError):
            continue
        pid, parent = int(fields["Pid"]), int(fields["PPid"])
        if pg_pid in (pid, parent) and "VmRSS" in fields:
            total_kib += int(fields["VmRSS"].split()[0])
    return round(total_kib / 1024, 1)


def own_peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def storage_mib(pool: asyncpg.Pool[Any]) -> dict[str, float]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT pg_total_relation_size('chunks') AS chunks,"
            " coalesce(pg_relation_size(to_regclass('chunks_embedding_hnsw_idx')), 0) AS idx"
        )
    assert row is not None
    return {
        "chunks_total_mib": round(row["chunks"] / 2**20, 1),
        "hnsw_index_mib": round(row["idx"] / 2**20, 1),
    }
