"""At the connection cap idle connections make room: health checks and other peers get in.

Real sockets against uvicorn with a small cap and a header timeout far longer than the
test, so only the cap closes connections: every assertion is about which connections
were closed and which answered, never about time. 127.0.0.2 is a second loopback peer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from kb_mcp.server.limits import HttpLimits
from tests.fuzz.test_hostile_http import Served, serve_with_limits
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer

CAP = 8
LIMITS = HttpLimits(max_connections=CAP, header_timeout_s=120.0, keep_alive_s=120.0)
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def served(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> AsyncIterator[Served]:
    async with serve_with_limits(LIMITS, app_database, fake_openai, openai_api_key) as served:
        yield served


async def _open(port: int, peer: str) -> Stream:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(peer, 0))


async def _closed_by_server(stream: Stream) -> bool:
    """True when the server has closed `stream` (EOF), read without sending anything."""
    data = await asyncio.wait_for(stream[0].read(), 60)
    return data == b""


async def _ask(stream: Stream, port: int, path: str = "/healthz") -> int:
    """GET `path` on an open connection (keep-alive); the status."""
    reader, writer = stream
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def _tool_call(port: int, peer: str) -> dict[str, object]:
    """kb_list over a new connection from `peer`; the JSON-RPC result."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "kb_list", "arguments": {}},
        }
    ).encode()
    reader, writer = await _open(port, peer)
    writer.write(
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    data = await asyncio.wait_for(reader.read(), 60)
    writer.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    result = json.loads(data.partition(b"\r\n\r\n")[2])["result"]
    assert isinstance(result, dict)
    return result


def _close(streams: list[Stream]) -> None:
    for _, writer in streams:
        writer.close()


async def test_a_full_server_closes_the_oldest_idle_connections_for_newcomers(
    served: Served,
) -> None:
    """cap + 4 idle connections: the 4 oldest are closed; the newest cap still answer."""
    port = served.port
    streams = [await _open(port, "127.0.0.1") for _ in range(CAP + 4)]
    try:
        assert all(await asyncio.gather(*(_closed_by_server(s) for s in streams[:4])))
        statuses = [await _ask(stream, port) for stream in streams[4:]]
        assert statuses == [200] * CAP
    finally:
        _close(streams)


async def test_idle_connections_from_one_peer_leave_health_and_other_peers_answering(
    served: Served,
) -> None:
    """A peer holding the cap in idle sockets: its own health checks and another peer's tool
    calls are answered, and the other peer's open connection is not the one closed."""
    port = served.port
    other = await _open(port, "127.0.0.2")
    hog = [await _open(port, "127.0.0.1") for _ in range(2 * CAP)]
    try:
        for path in ("/healthz", "/readyz", "/healthz"):
            health = await _open(port, "127.0.0.1")
            assert await _ask(health, port, path) == 200
            _close([health])
        result = await _tool_call(port, "127.0.0.2")
        assert result["isError"] is False
        assert await _ask(other, port) == 200
    finally:
        _close([other, *hog])


async def test_a_newcomer_is_refused_only_when_no_connection_is_idle(served: Served) -> None:
    """With every connection inside a request (a body still arriving), a newcomer is closed
    at once and every request in progress is still answered."""
    port = served.port
    busy = [await _open(port, "127.0.0.2") for _ in range(CAP)]
    try:
        for reader, writer in busy:
            writer.write(
                f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
                "\r\nAccept: application/json, text/event-stream\r\nExpect: 100-continue\r\n"
                "MCP-Protocol-Version: 2025-06-18\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            # uvicorn says 100 Continue when the app first reads the body: the request is in.
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            assert interim.startswith(b"HTTP/1.1 100"), interim
        newcomer = await _open(port, "127.0.0.1")
        assert await _closed_by_server(newcomer)
        for reader, writer in busy:
            writer.write(b"{}")
            data = await asyncio.wait_for(reader.read(), 60)
            assert data.startswith(b"HTTP/1.1 400"), data[:100]  # "{}" is not JSON-RPC
    finally:
        _close(busy)
