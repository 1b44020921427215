"""How embedding vectors travel between Python and pgvector.

Queries send vectors as `real[]` (`vector_param`: a checked `list[float]`, which asyncpg
encodes in its binary format) cast in SQL (`$1::real[]::vector(N)`, `vector_sql`), and read
stored ones back the same way (`embedding::real[]`). That works on any connection,
including one opened before the migration created the extension, and costs ~20 us per
1536-dimension vector where the text form (`'[0.1,0.2,...]'`, `vector_literal`) cost
~1,700 us to format (`python -m bench.bench_embeddings` prints both). `init_connection`
also registers a text codec for `vector` on connections where the type exists, so a query
that selects a `vector` column as such gets a `list[float]` back.

The chunks get an HNSW index for cosine distance when N is at most 2,000 (pgvector's limit
for indexing `vector`); above that, search is exact (no index). OpenAI's
`text-embedding-3-*` models accept a smaller `dimensions`, which keeps the index. (An
index over `halfvec` would reach 4,000 dimensions, but needs pgvector 0.7; the local stack
ships 0.6, so only `vector` is used: it works on every pgvector since 0.5.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import asyncpg

__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "MAX_DIMENSIONS",
    "SESSION_EF_SEARCH",
    "VECTOR_HNSW_MAX_DIMENSIONS",
    "chunk_index_sql",
    "distance_sql",
    "init_connection",
    "parse_vector",
    "vector_literal",
    "vector_param",
    "vector_sql",
]

VECTOR_HNSW_MAX_DIMENSIONS = 2000
MAX_DIMENSIONS = 16000
"""pgvector's limit for a `vector` column."""
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
"""The chunk index's graph: pgvector's `m`, twice its `ef_construction` (migration 0005).

Measured at 100k chunks (`bench/bench_search.py`, hard data set): recall@10 0.99 at
`ef_search` 400 against 0.94 with the defaults (16, 64), for a build 2.8 times as long.
"""


def check_dimensions(dimensions: int) -> int:
    """`dimensions` as an int within pgvector's limits, or `ValueError`."""
    if isinstance(dimensions, bool) or not isinstance(dimensions, int):
        raise ValueError("embedding dimensions must be an integer")
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"embedding dimensions must be between 1 and {MAX_DIMENSIONS}")
    return dimensions


def chunk_index_sql(
    dimensions: int, *, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION
) -> str:
    """The statement creating the ANN index on `chunks.embedding` (a comment when none fits)."""
    n = check_dimensions(dimensions)
    if n <= VECTOR_HNSW_MAX_DIMENSIONS:
        return (
            "CREATE INDEX chunks_embedding_hnsw_idx ON chunks "
            "USING hnsw (embedding vector_cosine_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)});"
        )
    return f"-- {n} dimensions exceed the HNSW limit: search over chunks is exact."


def vector_sql(dimensions: int, parameter: str) -> str:
    """`parameter` (a `real[]`, see `vector_param`) as a `vector(dimensions)` expression.

    `parameter` is a fixed SQL fragment from this package, never user input.
    """
    return f"{parameter}::real[]::vector({check_dimensions(dimensions)})"


def distance_sql(dimensions: int, column: str, parameter: str) -> str:
    """Cosine distance between `column` and the `real[]` parameter, in the chunk index's form.

    `column` and `parameter` are fixed SQL fragments from this package, never user input.
    """
    return f"({column} <=> {vector_sql(dimensions, parameter)})"


def vector_param(values: Sequence[float]) -> list[float]:
    """`values` as the `list[float]` a `real[]` parameter takes; every one must be finite."""
    vector = values if type(values) is list else list(values)
    # One C-level sum tells that every component is a finite number; only when it does
    # not (or overflows, for components near 1e308) is each component looked at.
    try:
        if math.isfinite(math.fsum(vector)):
            return vector
    except (OverflowError, TypeError, ValueError):
        pass
    checked: list[float] = []
    for value in vector:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("vector components must be finite numbers") from None
        if not math.isfinite(number):
            raise ValueError("vector components must be finite numbers")
        checked.append(number)
    return checked


def vector_literal(values: Sequence[float]) -> str:
    """pgvector's text form of a vector; every component must be finite."""
    parts: list[str] = []
    for value in values:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("vector components must be finite numbers")
        parts.append(repr(number))
    return "[" + ",".join(parts) + "]"


def parse_vector(text: str) -> list[float]:
    """A vector from pgvector's text form."""
    inner = text.strip().removeprefix("[").removesuffix("]")
    return [float(part) for part in inner.split(",")] if inner.strip() else []


SESSION_EF_SEARCH = 200
"""`hnsw.ef_search` of every pooled connection's session (`init_connection`): what a search
of kb_search's default 5 hits needs (`kb_mcp.db.documents.search_candidates(5)`), so that
one is one statement; a larger limit sets its own for a transaction."""


async def init_connection(conn: asyncpg.Connection[Any]) -> None:
    """Per-connection setup for the pool: `hnsw.ef_search` for the session, and a text
    codec for `vector` when the type exists.

    The setting lasts because the pool keeps session state on release
    (`kb_mcp.db.pool`); before the extension exists it is kept as a placeholder, which
    pgvector adopts when it loads.
    """
    row = await conn.fetchrow(
        "SELECT set_config('hnsw.ef_search', $1, false) AS ef_search, (SELECT n.nspname "
        "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = "
        "'vector' ORDER BY n.nspname = 'public' DESC LIMIT 1) AS schema",
        str(SESSION_EF_SEARCH),
    )
    schema = row["schema"] if row is not None else None
    if schema is None:
        return
    await conn.set_type_codec(
        "vector",
        schema=str(schema),
        encoder=vector_literal,
        decoder=parse_vector,
        format="text",
    )
