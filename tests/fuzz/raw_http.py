"""Raw HTTP/1.1 over a socket, for requests no well-behaved client library would send."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RawResponse", "mcp_call", "open_raw", "raw_request"]


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    elapsed_s: float

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def _parse(data: bytes, elapsed_s: float) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [
        (k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])
    ]
    return RawResponse(status=status, headers=headers, body=body, elapsed_s=elapsed_s)


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def raw_request(
    port: int,
    method: str,
    path: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout_s: float = 30.0,
) -> RawResponse:
    """Send one request with `Connection: close` and read the whole answer."""
    lines = [f"{method} {path} HTTP/1.1"]
    given = headers if headers is not None else [("Host", f"127.0.0.1:{port}")]
    lines += [f"{k}: {v}" for k, v in given]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    started = time.perf_counter()
    reader, writer = await open_raw(port)
    try:
        writer.write("\r\n".join(lines).encode("latin-1") + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
    return _parse(data, time.perf_counter() - started)


async def mcp_call(
    port: int, tool: str, arguments: dict[str, Any], *, extra: Sequence[tuple[str, str]] = ()
) -> tuple[RawResponse, dict[str, Any]]:
    """A JSON-RPC tools/call POSTed to /mcp; the response and its `result` (or `error`)."""
    message = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    response = await raw_request(
        port,
        "POST",
        "/mcp",
        headers=[
            ("Host", f"127.0.0.1:{port}"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2025-06-18"),
            *extra,
        ],
        body=json.dumps(message).encode(),
    )
    payload = response.json() if response.status == 200 else {}
    return response, payload
