"""The in-process request mix used under rotation by `bench_rotation` and the zero-drop test.

Short and long queries, a transaction over a temp table, and an embedding call, each
through the runtime's hot-swapped pool or client. Run it with the shared harness,
`kb_mcp.hotswap.load.run_worker(choose_kind, runtime_call(runtime), ...)`.
"""

from __future__ import annotations

import random

from kb_mcp.hotswap.load import Call
from kb_mcp.runtime.supervisor import Runtime

__all__ = ["KINDS", "choose_kind", "runtime_call"]

KINDS = ("short", "long", "transaction", "embedding")


def choose_kind(rng: random.Random) -> str:
    return rng.choice(KINDS)


def runtime_call(runtime: Runtime) -> Call:
    """One call of a kind through `runtime`; a wrong answer is an error like a raise."""

    async def call(kind: str, _rng: random.Random, _n: int) -> str | None:
        if kind == "short":
            value = await runtime.pool.fetchval("SELECT 1")
            return None if value == 1 else f"SELECT 1 answered {value!r}"
        if kind == "long":
            await runtime.pool.execute("SELECT pg_sleep(0.05)")
            return None
        if kind == "transaction":
            async with runtime.pool.acquire() as conn, conn.transaction():
                await conn.execute("CREATE TEMP TABLE IF NOT EXISTS t (n int) ON COMMIT DROP")
                await conn.execute("INSERT INTO t VALUES (1)")
                await conn.execute("SELECT pg_sleep(0.02)")
                count = await conn.fetchval("SELECT count(*) FROM t")
            return None if count == 1 else f"temp table held {count} rows"
        vectors = await runtime.openai.create_embeddings(
            ["rotation under load"], model="text-embedding-3-small", dimensions=64
        )
        return None if len(vectors[0]) == 64 else f"{len(vectors[0])} dimensions"

    return call
