"""The knowledge-base MCP server and its tools, registered here: kb_search, kb_get and
kb_list (`read_tools`), kb_add, kb_update and kb_delete (`write_tools`), kb_add_many,
kb_namespaces and kb_delete_namespace (`namespace_tools`), and the resources.

`build_mcp_server(context)` returns an `MCPServer` whose lifespan yields the
`AppContext` (given directly, or built by a factory), read by every tool call.

Every tool body runs inside `reporting.reported`, the one place our errors become MCP
tool errors (`is_error` results), and within the request budget (`kb_mcp.server.budget`:
connection loss is ridden through); one past it says so, and how far its write got.

Argument types and sizes are enforced by pydantic before a tool runs, strictly: `limit`
is a JSON integer (`true`, `"5"` and `1.0` are refused), strings are strings, and every
list and string carries its limit (`max_length`), so pydantic refuses a 400k-tag list
after reading 33 items rather than validating them all. The validators then check what
a type cannot say.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from kb_mcp.server.context import AppContext, ContextFactory
from kb_mcp.server.read_tools import kb_get, kb_list, kb_search
from kb_mcp.server.resources import register_document_resources
from kb_mcp.server.strict_tools import StrictToolsServer
from kb_mcp.server.write_tools import kb_add, kb_delete, kb_update

__all__ = ["SERVER_NAME", "build_mcp_server"]

SERVER_NAME = "kb-mcp"
_INSTRUCTIONS = (
    "A searchable knowledge base. Store documents with kb_add, find passages with kb_search "
    "(hybrid full-text and semantic search; the snippet is the best-matching passage), read "
    "a whole document with kb_get (or as the resource kb://documents/{id}), page through "
    "documents with kb_list, revise one in place with kb_update, remove one with kb_delete."
)

# -- wiring --------------------------------------------------------------------------


def _package_version() -> str:
    """The installed kb-mcp's version (MCP serverInfo.version), from its package metadata."""
    try:
        return importlib.metadata.version("kb-mcp")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0+unknown"


def build_mcp_server(
    context: AppContext | ContextFactory, *, name: str = SERVER_NAME
) -> MCPServer[AppContext]:
    """The MCP server with its tools and document resources, its lifespan yielding `context`."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        if isinstance(context, AppContext):
            yield context
        else:
            async with context() as built:
                yield built

    root = logging.getLogger()
    before = list(root.handlers)
    # Unknown arguments refused, refused ones explained in plain words (strict_tools).
    server: MCPServer[AppContext] = StrictToolsServer(
        name, instructions=_INSTRUCTIONS, lifespan=lifespan, version=_package_version()
    )
    # The SDK calls logging.basicConfig, which installs its own unredacted handler when the
    # root logger has none yet; logging belongs to kb_mcp.observability, so undo that.
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(kb_add, name="kb_add", annotations=ToolAnnotations(open_world_hint=False))
    server.add_tool(kb_search, name="kb_search", annotations=read_only)
    server.add_tool(kb_get, name="kb_get", annotations=read_only)
    server.add_tool(kb_list, name="kb_list", annotations=read_only)
    server.add_tool(
        kb_update,
        name="kb_update",
        annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False),
    )
    register_document_resources(server)
    from kb_mcp.server.namespace_tools import register_namespace_tools

    register_namespace_tools(server)
    server.add_tool(
        kb_delete,
        name="kb_delete",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    return server
