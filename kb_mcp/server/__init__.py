"""Server: the MCP tools, the HTTP app (/mcp, /healthz, /readyz) and its access control.

Only this package turns kb-mcp errors into MCP tool errors.

The names below are imported when first used (PEP 562), so a command that needs only
part of the package (`kb-mcp import` reads `kb_mcp.server.context` and the validators)
does not pay for the MCP SDK, Starlette and the HTTP app at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kb_mcp.lazy import lazy_exports

if TYPE_CHECKING:
    from kb_mcp.server.auth import BearerAuth, OriginPolicy, check_bind_policy
    from kb_mcp.server.context import AppContext
    from kb_mcp.server.http import build_http_app
    from kb_mcp.server.tools import build_mcp_server

__all__ = [
    "AppContext",
    "BearerAuth",
    "OriginPolicy",
    "build_http_app",
    "build_mcp_server",
    "check_bind_policy",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "AppContext": "kb_mcp.server.context",
        "BearerAuth": "kb_mcp.server.auth",
        "OriginPolicy": "kb_mcp.server.auth",
        "check_bind_policy": "kb_mcp.server.auth",
        "build_http_app": "kb_mcp.server.http",
        "build_mcp_server": "kb_mcp.server.tools",
    },
)
