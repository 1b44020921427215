"""How embedding vectors travel between Python and pgvector.

Queries send vectors as text (`'[0.1,0.2,...]'`) cast in SQL (`$1::text::vector`), so they
work on any connection, including one opened before the migration created the extension.
`init_connection` also registers a text codec for `vector` on connections where the type
exists, so a query that selects a vector gets a `list[float]` back.

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
    "VECTOR_HNSW_MAX_DIMENSIONS",
    "chunk_index_sql",
    "distance_sql",
    "init_connection",
    "parse_vector",
    "vector_literal",
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


def distance_sql(dimensions: int, column: str, parameter: str) -> str:
    """Cosine distance between `column` and the text parameter, in the chunk index's form.

    `column` and `parameter` are fixed SQL fragments from this package, never user input.
    """
    n = check_dimensions(dimensions)
    return f"({column} <=> {parameter}::text::vector({n}))"


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


async def init_connection(conn: asyncpg.Connection[Any]) -> None:
    """Per-connection setup for the pool: a text codec for `vector` when the type exists."""
    schema = await conn.fetchval(
        "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE t.typname = 'vector' ORDER BY n.nspname = 'public' DESC LIMIT 1"
    )
    if schema is None:
        return
    await conn.set_type_codec(
        "vector",
        schema=str(schema),
        encoder=vector_literal,
        decoder=parse_vector,
        format="text",
    )
