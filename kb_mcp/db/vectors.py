"""How embedding vectors travel between Python and pgvector.

A vector goes to the server as a checked `list[float]` (`vector_param`: finite numbers a
`real` holds) in one of two forms:

- a query vector (search, duplicate lookup) as a `vector` parameter (`query_vector_sql`,
  `distance_sql`), packed by the binary codec every pooled connection gets
  (`init_connection`, `encode_vector`: ~20 us for 1536 dimensions against ~900 us for
  asyncpg's generic `real[]` encoding). Nothing is cast on the server, so PostgreSQL's
  generic plan has nothing to evaluate per row;
- a vector to store as `real[]` cast once in the statement (`vector_sql`), which measured
  better for writes (`vector_sql` says why).

A selected `vector` comes back as a `list[float]` (`decode_vector`); stored vectors are
read as `embedding::real[]` where a query needs their numbers.

The codec can only be registered on a connection once the extension exists: a pool
opened before the first migration created it (boot on a fresh database, with a role that
may create it) renews its connections after migrating (`PoolManager.renew_connections`,
asyncpg's `expire_connections`). A connection without the codec refuses a query vector
("expected str, got list"); nothing is stored or ranked wrong.

The chunks get an HNSW index for cosine distance when N is at most 2,000 (pgvector's limit
for indexing `vector`); above that, search is exact (no index). OpenAI's
`text-embedding-3-*` models accept a smaller `dimensions`, which keeps the index. (An
index over `halfvec` would reach 4,000 dimensions, but needs pgvector 0.7; the local stack
ships 0.6, so only `vector` is used: it works on every pgvector since 0.5.)
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import asyncpg

__all__ = [
    "FLOAT4_MAX",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "MAX_DIMENSIONS",
    "SESSION_EF_SEARCH",
    "VECTOR_HNSW_MAX_DIMENSIONS",
    "chunk_index_sql",
    "decode_vector",
    "distance_sql",
    "encode_vector",
    "init_connection",
    "parse_vector",
    "query_vector_sql",
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
    """`parameter` (a `real[]`, see `vector_param`) as a `vector(dimensions)` expression:
    how a vector to store is written.

    A statement that writes a vector evaluates this once, so the cast costs little; the
    binary form (`query_vector_sql`) measured worse here: a chunk index grown from inserts
    sent so took 3x the server time per later insert (kb_add 62-64 against 85-87 req/s,
    same data, `bench/bench_mcp.py`; a REINDEX of that index restored it). The vectors
    stored are bit-for-bit the same; the cause is not known, so writes keep this form.

    `parameter` is a fixed SQL fragment from this package, never user input.
    """
    return f"{parameter}::real[]::vector({check_dimensions(dimensions)})"


def query_vector_sql(parameter: str) -> str:
    """`parameter` (a vector, see `vector_param`) as a `vector`: how a query vector is
    sent, in pgvector's binary form (the connection's codec, `init_connection`).

    Nothing is cast per row, in a custom plan or in the generic plan PostgreSQL switches a
    prepared statement to after five executions (where a `real[]` cast was evaluated for
    every row the distance was computed on: 3-7 ms a search at 300 chunks of 1536
    dimensions), and the client packs it in ~20 us instead of ~900 us. No typmod: the
    distance operator checks that both sides have the same dimension.

    `parameter` is a fixed SQL fragment from this package, never user input.
    """
    return f"{parameter}::vector"


def distance_sql(dimensions: int, column: str, parameter: str) -> str:
    """Cosine distance between `column` and the query vector `parameter`, in the chunk
    index's form (`query_vector_sql`).

    `column` and `parameter` are fixed SQL fragments from this package, never user input.
    """
    check_dimensions(dimensions)
    return f"({column} <=> {query_vector_sql(parameter)})"


FLOAT4_MAX = 3.4028234663852886e38
"""The largest finite `real`: pgvector stores each component as one."""
_RANGE_ERROR = "vector components must be finite numbers within the float4 range"


def vector_param(values: Sequence[float]) -> list[float]:
    """`values` as the `list[float]` a vector parameter takes (`encode_vector`): every one
    a finite number a `real` holds, or `ValueError`."""
    vector = values if type(values) is list else list(values)
    # C-level passes tell that every component is a number in range (the sum is finite
    # and so are min and max); only when they do not (or the sum overflows, for
    # components near 1e308) is each component looked at, to say which rule it breaks.
    try:
        # A finite sum means no NaN or infinity, so min and max are well defined.
        finite = math.isfinite(math.fsum(vector))
        if finite and min(vector) >= -FLOAT4_MAX and max(vector) <= FLOAT4_MAX:
            return vector
    except (OverflowError, TypeError, ValueError):
        pass
    checked: list[float] = []
    for value in vector:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(_RANGE_ERROR) from None
        if not math.isfinite(number) or abs(number) > FLOAT4_MAX:
            raise ValueError(_RANGE_ERROR)
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


_HEADER = struct.Struct(">HH")
"""pgvector's binary form: dimensions (uint16), an unused uint16, then big-endian float4s."""


def encode_vector(values: Sequence[float] | str) -> bytes:
    """`values` in pgvector's binary wire format (the codec's encoder).

    A `str` is taken in pgvector's text form (`'[1,2,3]'`). Components are not checked
    here (`vector_param` does, before a statement); the server refuses NaN and infinity.
    """
    vector = parse_vector(values) if isinstance(values, str) else values
    n = len(vector)
    return _HEADER.pack(n, 0) + struct.pack(f">{n}f", *vector)


def decode_vector(data: bytes) -> list[float]:
    """A `vector` from pgvector's binary wire format (the codec's decoder)."""
    (n, _unused) = _HEADER.unpack_from(data)
    return list(struct.unpack_from(f">{n}f", data, _HEADER.size))


SESSION_EF_SEARCH = 200
"""`hnsw.ef_search` of every pooled connection's session (`init_connection`): what a search
of kb_search's default 5 hits needs (`kb_mcp.db.nearest.search_candidates(5)`), so that
one is one statement; a larger limit sets its own for a transaction."""


async def init_connection(conn: asyncpg.Connection[Any]) -> None:
    """Per-connection setup for the pool: `hnsw.ef_search` for the session, and the binary
    codec for `vector` when the type exists (module doc).

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
        encoder=encode_vector,
        decoder=decode_vector,
        format="binary",
    )
