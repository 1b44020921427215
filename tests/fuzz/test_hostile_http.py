"""Hostile requests over real HTTP (raw sockets against uvicorn): issue 9, items 1 and 4-8.

Every answer is a clear refusal or a tool error, never an internal error, and the cost
of refusing an oversized argument does not grow with it: the 100k-tag request is timed
against the 10-tag one in the same run (a ratio, not an absolute bound).
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from uvicorn.protocols.http.h11_impl import H11Protocol

from kb_mcp.server.auth import OriginPolicy
from kb_mcp.server.http import build_http_app
from kb_mcp.server.limits import HttpLimits
from kb_mcp.server.tools import build_mcp_server
from tests.fuzz.raw_http import RawResponse, mcp_call, open_raw, raw_request
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import KbStack, kb_stack, serve_asgi
from tests.support.readiness import ReadinessSnapshot

LIMITS = HttpLimits(max_connections=24, header_timeout_s=0.5, keep_alive_s=1.0, body_timeout_s=0.5)
CAP_LIMITS = HttpLimits(max_connections=24, header_timeout_s=3.0, keep_alive_s=1.0)
"""For the cap test: a header timeout far longer than opening every connection takes, so no
connection times out (freeing a slot) before the last one has arrived, even on a loaded
machine."""


@dataclass(frozen=True)
class Served:
    port: int
    kb: KbStack


async def _ready() -> ReadinessSnapshot:
    return ReadinessSnapshot(ready=True)


@asynccontextmanager
async def serve_with_limits(
    limits: HttpLimits,
    app_database: AppDatabase,
    fake_openai: FakeOpenAIServer,
    openai_api_key: str,
) -> AsyncIterator[Served]:
    async with kb_stack(app_database, fake_openai, openai_api_key) as kb:
        app = build_http_app(
            build_mcp_server(kb.context),
            readiness=_ready,
            auth=None,
            policy=OriginPolicy.for_bind("127.0.0.1"),
            limits=limits,
        )
        async with serve_asgi(app, **limits.uvicorn_options(H11Protocol)) as base:
            yield Served(port=int(base.rsplit(":", 1)[1]), kb=kb)


@pytest.fixture
async def served(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> AsyncIterator[Served]:
    async with serve_with_limits(LIMITS, app_database, fake_openai, openai_api_key) as served:
        yield served


@pytest.fixture
async def served_for_cap(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> AsyncIterator[Served]:
    async with serve_with_limits(CAP_LIMITS, app_database, fake_openai, openai_api_key) as served:
        yield served


def _tool_text(payload: dict[str, object]) -> tuple[bool, str]:
    result = payload["result"]
    assert isinstance(result, dict), payload
    content = result["content"]
    assert isinstance(content, list)
    return bool(result.get("isError")), " ".join(str(c.get("text", "")) for c in content)


# -- item 6 and 8: Host and Origin on every route, strictly parsed, no redirect ---------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/mcp", "/mcp/", "/nowhere"])
@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "127.0.0.1:44035@evil.example",
        "127.0.0.1:abc",
        "127.0.0.1:70000",
        "127.0.0.1:0",
        "localhost:\u0668\u0660",
    ],
)
async def test_a_foreign_or_malformed_host_is_refused_on_every_route(
    served: Served, path: str, host: str
) -> None:
    """421 before any route answers (readiness included), and never a redirect."""
    method = "POST" if path.startswith("/mcp") else "GET"
    response = await raw_request(
        served.port, method, path, headers=[("Host", host.encode().decode("latin-1"))]
    )
    assert response.status in {400, 421}, response
    assert response.header("location") is None
    assert b"secrets" not in response.body


@pytest.mark.parametrize(
    "origin", ["http://localhost:abc", "http://localhost:65536", "http://u@localhost:3000"]
)
async def test_a_malformed_origin_is_refused(served: Served, origin: str) -> None:
    """403 for ports that are not 1-65535 digits and for userinfo."""
    response = await raw_request(
        served.port,
        "GET",
        "/readyz",
        headers=[("Host", f"127.0.0.1:{served.port}"), ("Origin", origin)],
    )
    assert response.status == 403


async def test_duplicate_host_or_origin_headers_are_refused(served: Served) -> None:
    """Two Hosts, or an allowed Origin then a foreign one, are 400: no header is skipped."""
    host = ("Host", f"127.0.0.1:{served.port}")
    two_hosts = await raw_request(served.port, "GET", "/healthz", headers=[host, host])
    two_origins = await raw_request(
        served.port,
        "GET",
        "/healthz",
        headers=[host, ("Origin", "http://localhost:3000"), ("Origin", "http://evil.example")],
    )
    assert two_hosts.status == 400
    assert two_origins.status == 400


async def test_mcp_with_a_trailing_slash_is_not_redirected(served: Served) -> None:
    """POST /mcp/ with the right Host is 404, not a 307 to a Host the client chose."""
    response = await raw_request(served.port, "POST", "/mcp/")
    assert response.status == 404
    assert response.header("location") is None


# -- item 5: no endless GET stream; connection cap; header, body, keep-alive timeouts ----


async def test_get_mcp_is_refused_in_stateless_mode(served: Served) -> None:
    """GET /mcp answers 405 (Allow: POST) at once instead of opening an endless stream."""
    response = await raw_request(
        served.port,
        "GET",
        "/mcp",
        headers=[("Host", f"127.0.0.1:{served.port}"), ("Accept", "text/event-stream")],
        timeout_s=5,
    )
    assert response.status == 405
    assert response.header("allow") == "POST"


async def test_a_slow_request_head_is_cut_off(served: Served) -> None:
    """Half a request head, then silence: the server closes the connection (header timeout)."""
    reader, writer = await open_raw(served.port)
    writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.perf_counter()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert data == b""
    assert time.perf_counter() - started < 5


async def test_a_slow_body_gets_408(served: Served) -> None:
    """A body that stops halfway is answered 408 with Connection: close."""
    reader, writer = await open_raw(served.port)
    writer.write(
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert data.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in data.lower()


async def test_an_idle_keep_alive_connection_is_closed(served: Served) -> None:
    """After a response, an idle keep-alive connection is closed by the server."""
    reader, writer = await open_raw(served.port)
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    await reader.readexactly(length)
    rest = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert rest == b""


async def test_connections_beyond_the_cap_are_closed_at_once(served_for_cap: Served) -> None:
    """Of cap + 16 idle connections, 16 (the oldest) are closed at once; the rest time out."""
    served, limits = served_for_cap, CAP_LIMITS
    extra = 16
    opened = [await open_raw(served.port) for _ in range(limits.max_connections + extra)]
    started = time.perf_counter()

    async def closed_after(reader: asyncio.StreamReader) -> float:
        await asyncio.wait_for(reader.read(), 10)
        return time.perf_counter() - started

    closed = await asyncio.gather(*(closed_after(reader) for reader, _ in opened))
    for _, writer in opened:
        writer.close()
    early = [t for t in closed if t < limits.header_timeout_s / 2]
    assert len(early) == extra, sorted(closed)
    assert max(closed) < limits.header_timeout_s + 5
    healthy = await raw_request(served.port, "GET", "/healthz")
    assert healthy.status == 200


# -- item 1: refusing an oversized argument costs the same at any size -------------------


async def test_tag_lists_of_any_length_are_refused_in_flat_time(served: Served) -> None:
    """10, 1k, 100k tags: a clear error; the 100k case costs under 20x the 10 case."""
    timings: dict[int, list[float]] = {}
    for size in (10, 1_000, 100_000):
        tags = [f"t{i}" for i in range(size)]
        for tool in ("kb_search", "kb_list", "kb_add"):
            arguments: dict[str, object] = {"tags": tags}
            if tool == "kb_search":
                arguments["query"] = "x"
            if tool == "kb_add":
                arguments |= {"title": "t", "content": "c"}
            response, payload = await mcp_call(served.port, tool, arguments)
            if size > LIMITS.max_json_values:
                assert response.status == 400
                assert b"JSON values" in response.body
            elif size > 32:
                assert response.status == 200
                is_error, text = _tool_text(payload)
                assert is_error
                assert f"tags has {size} entries; the limit is 32" in text
        samples = []
        for _ in range(5):
            response, _payload = await mcp_call(served.port, "kb_list", {"tags": tags})
            samples.append(response.elapsed_s)
        timings[size] = samples
    small, large = statistics.median(timings[10]), statistics.median(timings[100_000])
    print(
        f"\ntags 10/1k/100k median s: {[round(statistics.median(timings[n]), 4) for n in timings]}"
    )
    assert large < 20 * small, timings
    assert (await raw_request(served.port, "GET", "/healthz")).status == 200


# -- items 4 and 8: cursors, strict types, ids ------------------------------------------


_FORGED = [
    # base64url of "0001-01-01T00:00:00+14:00|<uuid>" and "9999-12-31T23:59:59-14:00|<uuid>"
    "MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHxlMTg0YmY4Yi1hOGNkLTRmYTgtOTE4Yy02NGMyNTU4M2QxYjE",
    base64.urlsafe_b64encode(b"9999-12-31T23:59:59-14:00|e184bf8b-a8cd-4fa8-918c-64c25583d1b1")
    .decode()
    .rstrip("="),
    "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
    "x" * 129,
]


async def test_forged_cursors_are_bad_arguments_not_outages(served: Served) -> None:
    """Forged, tampered and oversized cursors are tool errors about the cursor; real ones page."""
    for i in range(3):
        await served.kb.store.add_document(title=f"d{i}", content="c", tags=[], metadata={})
    _, first = await mcp_call(served.port, "kb_list", {"limit": 2})
    cursor = first["result"]["structuredContent"]["next_cursor"]
    _, second = await mcp_call(served.port, "kb_list", {"limit": 2, "cursor": cursor})
    assert not _tool_text(second)[0]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for forged in [*_FORGED, tampered]:
        _, payload = await mcp_call(served.port, "kb_list", {"cursor": forged})
        is_error, text = _tool_text(payload)
        assert is_error, forged
        assert "cursor" in text, text
        assert "database" not in text, text


@pytest.mark.parametrize("limit", [True, "5", 1.0, 0, 51, None])
async def test_limit_must_be_a_json_integer_in_range(served: Served, limit: object) -> None:
    """true, "5", 1.0, 0, 51 and null are refused by kb_search and kb_list alike."""
    for tool, extra in (("kb_search", {"query": "q"}), ("kb_list", {})):
        _, payload = await mcp_call(served.port, tool, {**extra, "limit": limit})
        is_error, text = _tool_text(payload)
        assert is_error, (tool, limit)
        assert "limit" in text, text


@pytest.mark.parametrize(
    "ident",
    [
        "\u0661" * 8
        + "-"
        + "\u0661" * 4
        + "-"
        + "\u0661" * 4
        + "-"
        + "\u0661" * 4
        + "-"
        + "\u0661" * 12,
        "{12345678-1234-1234-1234-123456789abc}",
        "urn:uuid:12345678-1234-1234-1234-123456789abc",
        "1" * 100_000,
    ],
)
async def test_ids_are_ascii_uuids_only(served: Served, ident: str) -> None:
    """Non-ASCII digits, braces, URNs and huge strings are not document ids."""
    for tool in ("kb_get", "kb_delete"):
        _, payload = await mcp_call(served.port, tool, {"id": ident})
        is_error, text = _tool_text(payload)
        assert is_error
        assert "id" in text


# -- issue 20: JSON-RPC ids; issue 24: an oversized body is read before it is refused --------


def _post_mcp(port: int, body: bytes) -> Awaitable[RawResponse]:
    return raw_request(
        port,
        "POST",
        "/mcp",
        headers=[
            ("Host", f"127.0.0.1:{port}"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        body=body,
    )


@pytest.mark.parametrize("ident", [{}, {"a": 1}, [], [1], True, False, 1.5, None])
async def test_an_id_neither_string_nor_integer_is_an_invalid_request(
    served: Served, ident: object
) -> None:
    """An object, array, boolean, fraction or null id: 400 with JSON-RPC error -32600, not 202."""
    message = {"jsonrpc": "2.0", "id": ident, "method": "tools/list", "params": {}}
    response = await _post_mcp(served.port, json.dumps(message).encode())
    assert response.status == 400, response
    payload = response.json()
    assert payload["jsonrpc"] == "2.0"
    assert payload["id"] is None
    assert payload["error"]["code"] == -32600
    assert "id must be a string or an integer" in payload["error"]["message"]


@pytest.mark.parametrize("ident", ["abc", "", 0, -3, 2**53])
async def test_string_and_integer_ids_are_answered(served: Served, ident: object) -> None:
    """String and integer ids (zero, negative, large) get a result carrying the same id."""
    message = {"jsonrpc": "2.0", "id": ident, "method": "tools/list", "params": {}}
    response = await _post_mcp(served.port, json.dumps(message).encode())
    assert response.status == 200, response
    assert response.json()["id"] == ident


async def test_a_notification_without_id_is_still_accepted(served: Served) -> None:
    """A message with no id at all is a notification: 202, as before."""
    message = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = await _post_mcp(served.port, json.dumps(message).encode())
    assert response.status == 202, response


async def test_an_oversized_body_is_read_then_refused_with_a_jsonrpc_error(served: Served) -> None:
    """5 MB sent in full gets 413 with error -32600 naming the limit (no reset mid-upload)."""
    content = "x" * (5 * 1024 * 1024)
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "kb_add"}}
    body = json.dumps({**message, "params": {"arguments": {"content": content}}}).encode()
    response = await _post_mcp(served.port, body)
    assert response.status == 413
    error = response.json()["error"]
    assert error["code"] == -32600
    assert f"at most {LIMITS.max_body_bytes} bytes" in error["message"]


async def test_a_body_declared_beyond_the_drain_bound_is_refused_at_once(served: Served) -> None:
    """A Content-Length over `max_drain_bytes` is refused before any of the body is read."""
    reader, writer = await open_raw(served.port)
    writer.write(
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {LIMITS.max_drain_bytes + 1}\r\n"
        "\r\n".encode()
    )
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert data.startswith(b"HTTP/1.1 413")
    assert b'"code": -32600' in data
