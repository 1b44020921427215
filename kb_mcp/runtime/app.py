"""Wire a booted `Runtime` to the MCP server and the HTTP app.

The tools read a frozen `AppContext` (`kb_mcp.runtime.wiring`) whose database is the
runtime's `PoolManager` and whose embedder sits on its `OpenAIClientHolder`, so every
request goes through the hot-swapped resources. `/readyz` is `Runtime.health`; the bearer
token, when a token secret is configured, comes from the runtime's hot-reloaded
`AuthTokenHolder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette

from kb_mcp.runtime.supervisor import Runtime
from kb_mcp.runtime.wiring import build_context
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
    context = build_context(runtime)
    mcp = build_mcp_server(context)
    auth = BearerAuth(runtime.tokens.tokens) if runtime.tokens is not None else None
    policy = OriginPolicy.for_bind(
        host,
        extra_hosts=_split(settings.allowed_hosts),
        extra_origins=_split(settings.allowed_origins),
    )
    http: Any = build_http_app(mcp, readiness=runtime.health, auth=auth, policy=policy)
    return BuiltApp(mcp=mcp, http=http, context=context)
