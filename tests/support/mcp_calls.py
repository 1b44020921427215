"""Calling MCP tools in tests: the text of a result, a call that must succeed or be refused."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp_types import CallToolResult, TextContent

__all__ = ["call_ok", "call_refused", "tool_text"]


def tool_text(result: CallToolResult) -> str:
    """Every text block of a tool result, one per line."""
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def call_ok(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The structured result of a call that must succeed."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, tool_text(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def call_refused(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """The error text of a call that must be refused (the arguments' names, never values)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} accepted {sorted(arguments)}"
    return tool_text(result)
