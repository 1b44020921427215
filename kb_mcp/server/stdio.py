"""MCP over stdio, answering a malformed line with a JSON-RPC error instead of silence.

The SDK's stdio transport hands a line it cannot parse to the session as an exception,
which only logs it: the client waits for an answer that never comes. `run_stdio` sits
between the two and answers such a line itself, as JSON-RPC 2.0 asks: `-32700 Parse
error` when the line is not JSON, `-32600 Invalid Request` when it is JSON but not a
JSON-RPC message, both with `"id": null` (the id could not be read).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import structlog
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError

__all__ = ["malformed_line_error", "run_stdio"]

log = structlog.get_logger(__name__)


def malformed_line_error(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error answering a line the transport could not turn into a message."""
    not_json = "json_invalid" in str(exc) or isinstance(exc, json.JSONDecodeError)
    code, message = (
        (PARSE_ERROR, "Parse error: the line is not JSON")
        if not_json
        else (INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
    )
    return JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=code, message=message))


async def run_stdio(
    server: MCPServer[Any],
    *,
    stdin: anyio.AsyncFile[str] | None = None,
    stdout: anyio.AsyncFile[str] | None = None,
) -> None:
    """Serve `server` over stdio (or the given files) until stdin ends."""
    lowlevel = server._lowlevel_server  # the SDK's own run_stdio_async reads it so
    async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def pump() -> None:
            async with send:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        log.info("stdio.malformed_line", error=type(item).__name__)
                        await write_stream.send(SessionMessage(malformed_line_error(item)))
                        continue
                    await send.send(item)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(pump)
            await lowlevel.run(receive, write_stream, lowlevel.create_initialization_options())
