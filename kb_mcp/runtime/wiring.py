"""The tools' `AppContext` for a booted `Runtime`: the document store's wiring, once.

The database is the runtime's `PoolManager` and the embedder sits on its
`OpenAIClientHolder` (behind the coalescing backend and, when configured, the embedding
cache), so every request goes through the hot-swapped resources. `kb_mcp.runtime.app`
puts the MCP server and the HTTP app around it; `kb-mcp import` and `kb-mcp export` use
it alone (no MCP SDK, no Starlette imported).
"""

from __future__ import annotations

from kb_mcp.db.ridethrough import Reconnect, probe_source
from kb_mcp.db.vectors import SESSION_EF_SEARCH
from kb_mcp.embeddings.cache import CachingEmbeddingsBackend, EmbeddingCache
from kb_mcp.embeddings.coalesce import CoalescingEmbeddingsBackend
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.embeddings.port import EmbeddingsBackend
from kb_mcp.runtime.health import ObservedBackend
from kb_mcp.runtime.supervisor import Runtime
from kb_mcp.server.context import AppContext

__all__ = ["build_context"]


def build_context(runtime: Runtime) -> AppContext:
    """The context the tools read, over `runtime`'s pool and OpenAI client."""
    settings = runtime.settings
    backend: EmbeddingsBackend = CoalescingEmbeddingsBackend(
        ObservedBackend(runtime.openai, runtime.embeddings_health),
        max_calls=settings.embedding_max_calls,
        metrics=runtime.metrics,
    )
    if settings.embedding_cache_entries > 0:
        cache = EmbeddingCache(
            max_entries=settings.embedding_cache_entries,
            max_bytes=int(settings.embedding_cache_mb * 2**20),
            metrics=runtime.metrics,
        )
        backend = CachingEmbeddingsBackend(backend, cache)
    embedder = Embedder(
        backend, model=settings.embedding_model, dimensions=settings.embedding_dimensions
    )
    # The pool's connections start with `init_connection` (kb_mcp.runtime.serve), which
    # sets this ef_search for their sessions.
    return AppContext(
        db=runtime.pool,
        embedder=embedder,
        readiness=runtime.health,
        session_ef_search=SESSION_EF_SEARCH,
        request_timeout_s=settings.request_timeout_s,
        reconnect=Reconnect(probe_source(runtime.pool)),
    )
