"""Concurrent embeddings through a booted runtime share calls to the real local endpoint."""

from __future__ import annotations

import asyncio
import math

from kb_mcp.db.vectors import init_connection
from kb_mcp.devstack.hashing import hashed_embedding
from kb_mcp.runtime.app import build_app
from kb_mcp.runtime.serve import boot_migrations
from kb_mcp.runtime.supervisor import boot_runtime
from tests.support.runtime_env import RuntimeEnv


async def test_ten_concurrent_queries_take_three_calls_and_each_gets_its_own_vector(
    env: RuntimeEnv,
) -> None:
    """max_calls 2: two go out alone, the eight arriving meanwhile share one call."""
    settings = env.settings(embedding_max_calls=2)
    async with boot_runtime(
        settings,
        pool_init=init_connection,
        on_pool_ready=boot_migrations(settings.embedding_dimensions),
    ) as runtime:
        embedder = build_app(runtime, host="127.0.0.1").context.embedder
        texts = [f"how do I rotate credential {n}" for n in range(10)]
        before = env.openai.requests_total
        vectors = await asyncio.gather(*(embedder.embed_one(text) for text in texts))
        assert env.openai.requests_total - before == 3
        assert runtime.metrics.total("EmbeddingRequestsCoalesced") == 8
        for text, got in zip(texts, vectors, strict=True):
            expected = hashed_embedding(text, settings.embedding_dimensions)
            assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(got, expected, strict=True))
