"""What every tool shares: the call's context type, the `AppContext` it carries, and the
`limit` argument's schema."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from pydantic import Field

from kb_mcp.server.context import AppContext
from kb_mcp.server.validation import MAX_LIMIT

__all__ = ["ToolContext", "app_of", "limit_field"]

ToolContext = Context[AppContext, Any]
"""The context a tool call receives; its lifespan context is the `AppContext`."""


def app_of(ctx: ToolContext) -> AppContext:
    """The `AppContext` the server's lifespan yielded, for this call."""
    return ctx.request_context.lifespan_context


def limit_field(what: str) -> Any:
    """The strict schema of a `limit` argument: a JSON integer from 1 to `MAX_LIMIT`."""
    return Field(
        strict=True,
        description=f"How many {what}, an integer from 1 to {MAX_LIMIT}.",
        json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
    )
