"""Search latency and HNSW recall through the storage layer, up to 100k chunks (1536 dims).

Documents are synthetic prose drawn from a fixed vocabulary (a few hundred to a few
thousand characters, so some span several chunks), embedded with the deterministic
feature-hashing model of the local stack (`hashed_embedding`, 1536 dimensions), into the
schema the migrations create (HNSW index on chunk embeddings). The first size is added
through `DocumentStore.add_document` with a few writers in parallel (the index grows row
by row: that rate is the product's ingest rate); later sizes are loaded as the same rows
in bulk, with the index dropped and rebuilt (faster). Then `DocumentStore.search` runs for
200 queries (a few words taken from a random document; limit 10). Query vectors are
computed before the clock starts: the figures are the database's share of a search (the
embedding call is the OpenAI API's latency, measured elsewhere).

At each size it also measures, on the same queries:

- recall@10 of the HNSW index at pgvector's default `hnsw.ef_search` (40): the 10 nearest
  chunks the index returns against the exact 10 nearest (index scans off), and the same
  for what `kb_search` returns (documents, `DocumentStore.search`'s own statements);
- how long the last HNSW build took (bulk sizes), and how storage and memory grew: the
  chunk table and index sizes, and the PostgreSQL server processes' resident memory.

With `--ef-search`, `--m` or `--ef-construction` (each a comma-separated list), the last
size's data is then measured over a grid (`bench._hnsw_grid`): every index `m` x
`ef_construction` built in turn on the same rows, each at every `ef_search`: recall@10 of
chunks and of what `kb_search` returns (asking the index for `ef_search` candidates), and
that search's p50/p99. Quick mode runs a small grid (the product's index, `ef_search` 40
and the product's candidate count).

`--data clustered` replaces the hashed prose by synthetic vectors with cluster structure
(`bench._clustered`: not text, a stand-in for real embeddings' shape), every size loaded in
bulk; the hashed prose (default) is the hard case.

    python -m bench.bench_search [--quick] [--json] [--sizes 1000,10000] [--queries 200]
    python -m bench.bench_search --sizes 1000 --chunks 100000     # the 100k-chunk figures
    python -m bench.bench_search --sizes 1000 --chunks 100000 --ef-search 40,100,200,400,800 \
        --m 16,24 --ef-construction 64,128 [--data clustered]     # the HNSW grid at 100k
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg

from bench import bench_parser, finish, latency_summary, machine, print_table
from bench._clustered import ClusteredCorpus
from bench._hnsw_grid import Grid, print_grid, run_grid
from bench._search_measures import own_peak_rss_mib, postgres_rss_mib, recall, storage_mib
from bench._stack import BenchDatabase, _postmaster_pid, open_database
from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import apply_migrations
from kb_mcp.db.nearest import NearestQueries, search_candidates
from kb_mcp.db.vectors import (
    chunk_index_sql,
    init_connection,
    parse_vector,
    vector_literal,
)
from kb_mcp.devstack.hashing import hashed_embedding
from kb_mcp.embeddings.chunking import split_into_chunks
from kb_mcp.observability.logging import configure_logging

DIMENSIONS = 1536
WRITERS = 4
LIMIT = 10
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sa", "do", "fu")


class HashingEmbedder:
    """The local stack's deterministic embeddings; known query vectors are precomputed."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._known: dict[str, list[float]] = {}

    def precompute(self, texts: Sequence[str]) -> None:
        for text in texts:
            self._known[text] = hashed_embedding(text, self.dimensions)

    def know(self, text: str, vector: list[float]) -> None:
        """Answer `text` with `vector` (the clustered data set's queries have no text)."""
        self._known[text] = vector

    def vector(self, text: str) -> list[float]:
        return self._known.get(text) or hashed_embedding(text, self.dimensions)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vector(t) for t in texts]

    async def embed_one(self, text: str) -> list[float]:
        (vector,) = await self.embed([text])
        return vector


class PoolSource:
    """A plain asyncpg pool as a `ConnectionSource` (no rotation needed here)."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection[Any]]:
        async with self._pool.acquire() as conn:
            # A pool hands out proxies that behave as connections (as PoolManager's do).
            yield cast("asyncpg.Connection[Any]", conn)


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _document(rng: random.Random, vocabulary: list[str], n: int) -> tuple[str, str]:
    topic = rng.sample(vocabulary, 8)
    sentences = []
    for _ in range(rng.randint(4, 40)):
        words = [rng.choice(topic) if rng.random() < 0.4 else rng.choice(vocabulary)]
        words += [
            rng.choice(topic) if rng.random() < 0.4 else rng.choice(vocabulary)
            for _ in range(rng.randint(5, 14))
        ]
        sentences.append(" ".join(words).capitalize() + ".")
    return f"document {n} about {' '.join(topic[:3])}", " ".join(sentences)


async def _fill(
    store: DocumentStore, rng: random.Random, vocabulary: list[str], start: int, stop: int
) -> tuple[float, int, list[str]]:
    """Add documents start..stop-1; seconds taken, chunks written, their texts' samples."""
    documents = [_document(rng, vocabulary, n) for n in range(start, stop)]
    queue = iter(documents)
    chunks = 0

    async def writer() -> None:
        nonlocal chunks
        for title, content in queue:
            added = await store.add_document(title=title, content=content, tags=[], metadata={})
            chunks += added.chunks

    began = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for _ in range(WRITERS):
            tasks.create_task(writer())
    return time.perf_counter() - began, chunks, [content for _, content in documents]


_BULK_DOCUMENT = (
    "INSERT INTO documents (id, title, content, embedding) VALUES ($1, $2, $3, $4::text::vector)"
)
_BULK_CHUNK = (
    "INSERT INTO chunks (document_id, ordinal, content, embedding) "
    "VALUES ($1, $2, $3, $4::text::vector)"
)


async def _bulk_fill(
    pool: asyncpg.Pool[Any],
    rng: random.Random,
    vocabulary: list[str],
    start: int,
    stop: int,
    *,
    until_chunks: int | None = None,
    corpus: ClusteredCorpus | None = None,
) -> tuple[float, int, list[str], float]:
    """Rows as `add_document` writes them, loaded without the index, which is then rebuilt.

    Documents start..stop-1, or, with `until_chunks`, as many as it takes to hold that many
    chunks in all (counting the `start` already there); from `corpus` when given, else
    hashed prose. Seconds taken (including the index build), chunks written, the contents,
    and the seconds the index build alone took.
    """
    began = time.perf_counter()
    contents: list[str] = []
    chunk_count = 0
    async with pool.acquire() as conn:
        existing = int(await conn.fetchval("SELECT count(*) FROM chunks"))
        await conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        offset = start
        while offset < stop if until_chunks is None else existing + chunk_count < until_chunks:
            documents, chunks = [], []
            for n in range(offset, offset + 500 if until_chunks else min(stop, offset + 500)):
                title, content, pieces = (
                    _hashed_rows(rng, vocabulary, n) if corpus is None else corpus.document(n)
                )
                contents.append(content)
                doc_id = uuid.uuid4()
                vectors = [vector_literal(vector) for _, vector in pieces]
                documents.append((doc_id, title, content, vectors[0]))
                chunks += [
                    (doc_id, ordinal, text, v)
                    for ordinal, ((text, _), v) in enumerate(zip(pieces, vectors, strict=True))
                ]
            async with conn.transaction():
                await conn.executemany(_BULK_DOCUMENT, documents)
                await conn.executemany(_BULK_CHUNK, chunks)
            chunk_count += len(chunks)
            offset += 500
        await conn.execute("SET maintenance_work_mem = '1GB'")
        building = time.perf_counter()
        await conn.execute(chunk_index_sql(DIMENSIONS))
        built_in = time.perf_counter() - building
        await conn.execute("ANALYZE documents, chunks")
    return time.perf_counter() - began, chunk_count, contents, built_in


def _hashed_rows(
    rng: random.Random, vocabulary: list[str], n: int
) -> tuple[str, str, list[tuple[str, list[float]]]]:
    """A hashed-prose document: title, content, its chunks' texts and vectors."""
    title, content = _document(rng, vocabulary, n)
    pieces = split_into_chunks(content)
    return (
        title,
        content,
        [(c.text, hashed_embedding(f"{title}\n\n{c.text}", DIMENSIONS)) for c in pieces],
    )


def _queries(rng: random.Random, contents: list[str], count: int) -> list[str]:
    queries = []
    for _ in range(count):
        words = rng.choice(contents).rstrip(".").split()
        at = rng.randrange(max(1, len(words) - 4))
        queries.append(" ".join(words[at : at + rng.randint(2, 5)]).lower().strip(".") or "ka")
    return queries


async def _time_searches(
    store: DocumentStore, embedder: HashingEmbedder, queries: list[str]
) -> list[float]:
    for query in queries[:5]:  # warm the plan cache and the index pages
        await store.search(query, limit=LIMIT)
    latencies = []
    for query in queries:
        began = time.perf_counter()
        await store.search(query, limit=LIMIT)
        latencies.append(time.perf_counter() - began)
    return latencies


async def _uses_index(pool: asyncpg.Pool[Any], store: DocumentStore, vector: str) -> bool:
    """Whether the planner answers an unfiltered search through the HNSW index."""
    sql = NearestQueries.for_dimensions(
        store.dimensions
    ).nearest  # the store's own statement, so the plan is the one it gets
    async with pool.acquire() as conn:
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) {sql}", parse_vector(vector), 100, LIMIT, "default"
        )
    return "chunks_embedding_hnsw_idx" in str(plan)


class VectorOpsCrash(RuntimeError):
    """pgvector's distance functions kill the server process on this machine."""


async def _check_vector_ops(db: BenchDatabase) -> None:
    """One cosine distance at 1536 dimensions, on a throwaway connection."""
    vector = vector_literal([1.0] * DIMENSIONS)
    conn = await asyncpg.connect(**db.connect_kwargs())
    try:
        await conn.fetchval(
            f"SELECT $1::text::vector({DIMENSIONS}) <=> $1::text::vector({DIMENSIONS})", vector
        )
    except (asyncpg.ConnectionDoesNotExistError, ConnectionError) as exc:
        raise VectorOpsCrash(
            "the database server process died computing a pgvector distance (on x86-64 a "
            "pgvector built for AVX-512 dies with SIGILL on a CPU without it; see the "
            "server log)"
        ) from exc
    finally:
        conn.terminate()


async def run(
    sizes: list[int],
    queries: int,
    chunk_target: int | None,
    *,
    data: str = "hashed",
    grid: Grid | None = None,
) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    rng = random.Random(1536)
    vocabulary = _vocabulary(rng)
    corpus = ClusteredCorpus(rng, DIMENSIONS) if data == "clustered" else None
    embedder = HashingEmbedder(DIMENSIONS)
    results: list[dict[str, Any]] = []
    grid_rows: list[dict[str, Any]] = []
    async with open_database() as db:
        await _check_vector_ops(db)
        pg_pid = _postmaster_pid(db.pg)
        pool = await asyncpg.create_pool(
            **db.connect_kwargs(), min_size=1, max_size=WRITERS, init=init_connection
        )
        try:
            source = PoolSource(pool)
            await apply_migrations(source, dimensions=DIMENSIONS)
            store = DocumentStore(source, embedder)
            contents: list[str] = []
            loaded = chunks = 0
            steps: list[tuple[int, int | None]] = [(size, None) for size in sorted(sizes)]
            if chunk_target is not None:
                steps.append((0, chunk_target))
            asked: list[str] = []
            for size, until_chunks in steps:
                before = {
                    "postgres_rss_mib": postgres_rss_mib(pg_pid),
                    "bench_rss": own_peak_rss_mib(),
                }
                built_in: float | None = None
                if loaded == 0 and corpus is None:
                    how = f"DocumentStore.add_document, {WRITERS} writers"
                    seconds, added, texts = await _fill(store, rng, vocabulary, loaded, size)
                else:
                    how = "bulk rows, then the HNSW index rebuilt"
                    seconds, added, texts, built_in = await _bulk_fill(
                        pool,
                        rng,
                        vocabulary,
                        loaded,
                        size,
                        until_chunks=until_chunks,
                        corpus=corpus,
                    )
                contents += texts
                chunks += added
                loaded += len(texts)
                asked = _asked(rng, embedder, corpus, contents, queries)
                vectors = [vector_literal(embedder.vector(q)) for q in asked]
                latencies = await _time_searches(store, embedder, asked)
                index_used = await _uses_index(pool, store, vectors[0])
                recalled = await recall(pool, store, vectors, dimensions=DIMENSIONS, limit=LIMIT)
                results.append(
                    {
                        "documents": loaded,
                        "chunks": chunks,
                        "loaded_by": how,
                        "load_docs_per_s": round(len(texts) / seconds, 1),
                        "load_s": round(seconds, 1),
                        "hnsw_build_s": None if built_in is None else round(built_in, 1),
                        "search": latency_summary(latencies),
                        "hnsw_index_used": index_used,
                        "recall_at_10": recalled,
                        "storage": await storage_mib(pool),
                        "memory": {
                            "postgres_rss_mib_before": before["postgres_rss_mib"],
                            "postgres_rss_mib_after": postgres_rss_mib(pg_pid),
                            "bench_peak_rss_mib_before": before["bench_rss"],
                            "bench_peak_rss_mib_after": own_peak_rss_mib(),
                        },
                    }
                )
            if grid is not None:
                vectors = [vector_literal(embedder.vector(q)) for q in asked]
                grid_rows = await run_grid(
                    pool,
                    pg_pid,
                    store,
                    vectors,
                    grid,
                    dimensions=DIMENSIONS,
                    limit=LIMIT,
                    built_s=results[-1]["hnsw_build_s"],
                )
        finally:
            await pool.close()
    return {
        "dimensions": DIMENSIONS,
        "limit": LIMIT,
        "writers": WRITERS,
        "data": data,
        "sizes": results,
        "grid": grid_rows,
    }


def _asked(
    rng: random.Random,
    embedder: HashingEmbedder,
    corpus: ClusteredCorpus | None,
    contents: list[str],
    count: int,
) -> list[str]:
    """This size's queries, their vectors known to the embedder (computed before timing)."""
    if corpus is None:
        asked = _queries(rng, contents, count)
        embedder.precompute(asked)
        return asked
    names = [f"clustered query {len(contents)}-{i}" for i in range(count)]
    for name in names:
        embedder.know(name, corpus.query())
    return names


def report(figures: dict[str, Any]) -> None:
    print(
        f"search through DocumentStore: {figures['dimensions']} dimensions, HNSW on chunks, "
        f"limit {figures['limit']}, query vectors precomputed"
    )
    rows = [
        [
            r["documents"],
            r["chunks"],
            r["load_docs_per_s"],
            r["search"]["n"],
            r["search"]["p50_ms"],
            r["search"]["p95_ms"],
            r["search"]["p99_ms"],
            "yes" if r["hnsw_index_used"] else "no (exact scan)",
            r["recall_at_10"]["chunks_recall"],
            r["recall_at_10"]["documents_recall"],
            r["hnsw_build_s"],
            r["storage"]["hnsw_index_mib"],
            r["memory"]["postgres_rss_mib_after"],
            r["loaded_by"],
        ]
        for r in figures["sizes"]
    ]
    print_table(
        "search latency (ms)",
        [
            "documents",
            "chunks",
            "docs loaded/s",
            "queries",
            "p50",
            "p95",
            "p99",
            "index",
            "recall@10 chunks",
            "recall@10 kb_search",
            "index build s",
            "index MiB",
            "postgres RSS MiB",
            "loaded by",
        ],
        rows,
    )
    if figures["sizes"]:
        ef = figures["sizes"][0]["recall_at_10"]
        print(
            f"recall: chunks at the default hnsw.ef_search {ef['default_ef_search']}, "
            f"kb_search at its ef_search {ef['documents_ef_search']}, against exact search"
        )
    if figures["grid"]:
        print_grid(figures["grid"], data=figures["data"], limit=figures["limit"])


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "search benchmark")
    parser.add_argument("--sizes", default=None, help="comma-separated document counts")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument(
        "--chunks", type=int, default=None, help="then bulk-load up to this many chunks in all"
    )
    parser.add_argument(
        "--data",
        choices=("hashed", "clustered"),
        default="hashed",
        help="hashed prose (the hard set, default) or clustered synthetic vectors",
    )
    parser.add_argument(
        "--ef-search", default=None, help="grid: comma-separated hnsw.ef_search values"
    )
    parser.add_argument("--m", default=None, help="grid: comma-separated index m values")
    parser.add_argument(
        "--ef-construction", default=None, help="grid: comma-separated ef_construction values"
    )
    args = parser.parse_args()
    quick = bool(args.quick)
    host = machine()
    sizes = [int(s) for s in (args.sizes or ("200" if quick else "1000,10000")).split(",")]
    grid = Grid.parse(
        args.ef_search,
        args.m,
        args.ef_construction,
        quick=quick,
        default_ef_search=[40, search_candidates(LIMIT)],
    )
    try:
        figures = asyncio.run(
            run(
                sizes,
                args.queries or (50 if quick else 200),
                args.chunks,
                data=args.data,
                grid=grid,
            )
        )
    except VectorOpsCrash as exc:
        sys.stderr.write(f"bench_search: {exc}\n")
        return 1
    report(figures)
    finish("search", figures, quick=quick, as_json=bool(args.json), host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
