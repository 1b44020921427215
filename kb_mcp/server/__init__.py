"""Server: the MCP tools, the HTTP app (/mcp, /healthz, /readyz) and its access control.

Only this package turns kb-mcp errors into MCP tool errors.

The names below are imported when first used (PEP 562), so a command that needs only
part of the package (`kb-mcp import` reads `kb_mcp.server.context` and the validators)
does not pay for the MCP SDK, Starlette and the HTTP app at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

_HOMES = {
    "AppContext": "kb_mcp.server.context",
    "BearerAuth": "kb_mcp.server.auth",
    "OriginPolicy": "kb_mcp.server.auth",
    "check_bind_policy": "kb_mcp.server.auth",
    "build_http_app": "kb_mcp.server.http",
    "build_mcp_server": "kb_mcp.server.tools",
}


def __getattr__(name: str) -> Any:
    """A re-exported name, imported from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
