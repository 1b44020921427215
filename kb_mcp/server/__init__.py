"""Server: the MCP tools, the HTTP app (/mcp, /healthz, /readyz) and its access control.

Only this package turns kb-mcp errors into MCP tool errors.
"""

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
