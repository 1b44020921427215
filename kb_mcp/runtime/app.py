"""Wire a booted `Runtime` to the MCP server and the HTTP app.

The tools read a frozen `AppContext` whose database is the runtime's `PoolManager` and
whose embedder sits on its `OpenAIClientHolder`, so every request goes through the
hot-swapped resources. `/readyz` is `Runtime.health`; the bearer token, when a token
secret is configured, comes from the runtime's hot-reloaded `AuthTokenHolder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette

from kb_mcp.db.ridethrough import Reconnect, probe_source
from kb_mcp.db.vectors import SESSION_EF_SEARCH
from kb_mcp.embeddings.cache import CachingEmbeddingsBackend, EmbeddingCache
from kb_mcp.embeddings.coalesce import CoalescingEmbeddingsBackend
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.embeddings.port import EmbeddingsBackend
from kb_mcp.runtime.health import ObservedBackend
from kb_mcp.runtime.supervisor import Runtime
from kb_mcp.server.auth import BearerAuth, OriginPolicy
from kb_mcp.server.context import AppContext
from kb_mcp.server.http import build_http_app
from kb_mcp.server.tools import build_mcp_server

__all__ = ["BuiltApp", "build_app"]


@dataclass(frozen=True)
class BuiltApp:
    """The MCP server (for stdio) and the HTTP app around it (for streamable HTTP)."""

    mcp: MCPServer[AppContext]
    http: Starlette
    context: AppContext


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def build_app(runtime: Runtime, *, host: str) -> BuiltApp:
    """The servers for `runtime`, bound (for Host/Origin checks) to `host`."""
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
    context = AppContext(
        db=runtime.pool,
        embedder=embedder,
        readiness=runtime.health,
        session_ef_search=SESSION_EF_SEARCH,
        request_timeout_s=settings.request_timeout_s,
        reconnect=Reconnect(probe_source(runtime.pool)),
    )
    mcp = build_mcp_server(context)
    auth = BearerAuth(runtime.tokens.tokens) if runtime.tokens is not None else None
    policy = OriginPolicy.for_bind(
        host,
        extra_hosts=_split(settings.allowed_hosts),
        extra_origins=_split(settings.allowed_origins),
    )
    http: Any = build_http_app(mcp, readiness=runtime.health, auth=auth, policy=policy)
    return BuiltApp(mcp=mcp, http=http, context=context)
