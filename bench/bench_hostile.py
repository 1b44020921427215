"""Hostile input against the HTTP app: refusal cost, internal errors, connections at the cap.

The app (`build_http_app`, the five tools on PostgreSQL 16 + pgvector, embeddings from the
local stack's deterministic hashing model) is served by uvicorn with `HttpLimits` (header
timeout lowered to 2 s so the run is short). Raw HTTP/1.1 requests over sockets send:
tag lists of 10 to 400k entries to kb_search, kb_list and kb_add, huge and deep metadata,
oversized content, forged cursors, ids in non-ASCII digits, non-integer limits, foreign
and malformed Host and Origin headers, GET /mcp and POST /mcp/. For each: the response
time; an internal error is a 5xx, a JSON-RPC error object, or a tool error that does not
say what is wrong. While the largest request is in flight, /healthz is timed. Then twice
the connection cap of idle sockets are opened, and slow-header and slow-body clients.

    python -m bench.bench_hostile [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bench import bench_parser, finish, machine, print_table
from bench._stack import open_database
from kb_mcp.db.migrate import apply_migrations
from kb_mcp.db.vectors import init_connection
from kb_mcp.devstack.hashing import hashed_embedding
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.observability.logging import configure_logging
from kb_mcp.server.auth import OriginPolicy
from kb_mcp.server.context import AppContext
from kb_mcp.server.http import build_http_app
from kb_mcp.server.limits import HttpLimits
from kb_mcp.server.tools import build_mcp_server

DIMENSIONS = 64
LIMITS = HttpLimits(header_timeout_s=2.0, body_timeout_s=2.0)
_VAGUE = ("unavailable", "failed", "internal")


class _Listening(uvicorn.Server):
    """uvicorn that sets `listening` once its sockets are bound."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class _Source:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn:
            yield conn


class _Hashing:
    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        return [hashed_embedding(t, DIMENSIONS) for t in texts]


class _Ready:
    """Always ready: the bench's app has no runtime behind it."""

    ready = True

    def to_json(self) -> dict[str, Any]:
        return {"status": "ready"}


async def _ready() -> _Ready:
    return _Ready()


async def _request(port: int, head: str, body: bytes = b"") -> tuple[int, bytes, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode("latin-1") + body)
        data = await asyncio.wait_for(reader.read(), 60)
    except ConnectionResetError:
        return -1, b"", time.perf_counter() - started  # refused before the body was sent
    finally:
        writer.close()
    elapsed = time.perf_counter() - started
    status = int(data.split(b" ", 2)[1]) if data else 0
    return status, data.partition(b"\r\n\r\n")[2], elapsed


def _post(port: int, tool: str, arguments: dict[str, Any]) -> tuple[str, bytes]:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    body = json.dumps(message).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head, body


def _internal(status: int, body: bytes) -> bool:
    if status >= 500 or status == 0:
        return True
    if status == -1:
        return False  # the connection was cut before the body was sent (413 on Content-Length)
    if status != 200:
        return False  # a refusal with its own status (400, 403, 404, 405, 408, 413, 421)
    payload = json.loads(body)
    if "error" in payload:
        return True
    result = payload["result"]
    text = " ".join(c.get("text", "") for c in result["content"])
    return bool(result.get("isError")) and (
        any(v in text for v in _VAGUE) or text.rstrip(": ").endswith(("kb_add", "kb_list"))
    )


def _cases(port: int, quick: bool) -> list[tuple[str, str, bytes]]:
    cases: list[tuple[str, str, bytes]] = []
    sizes = (
        (10, 1_000, 10_000, 100_000) if quick else (10, 1_000, 10_000, 100_000, 350_000, 400_000)
    )
    for size in sizes:
        tags = [f"t{i}" for i in range(size)]
        for tool, extra in (
            ("kb_search", {"query": "x"}),
            ("kb_list", {}),
            ("kb_add", {"title": "t", "content": "c"}),
        ):
            cases.append((f"{tool} {size} tags", *_post(port, tool, {**extra, "tags": tags})))
    deep: Any = 1
    for _ in range(150):
        deep = [deep]
    odd: dict[str, tuple[str, dict[str, Any]]] = {
        "metadata 1M items": (
            "kb_add",
            {"title": "t", "content": "c", "metadata": {"a": [1] * 10**6}},
        ),
        "metadata 150 deep": ("kb_add", {"title": "t", "content": "c", "metadata": {"a": deep}}),
        "metadata 1e308": ("kb_add", {"title": "t", "content": "c", "metadata": {"a": 1e308}}),
        "content 3M chars": ("kb_add", {"title": "t", "content": "x" * 3_000_000}),
        "title 1M chars": ("kb_add", {"title": "t" * 10**6, "content": "c"}),
        "query 1M chars": ("kb_search", {"query": "q" * 10**6}),
        "forged cursor": ("kb_list", {"cursor": "MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHxl"}),
        "limit true": ("kb_list", {"limit": True}),
        "limit '5'": ("kb_list", {"limit": "5"}),
        "limit 1.0": ("kb_list", {"limit": 1.0}),
        "id arabic digits": ("kb_get", {"id": "\u0661" * 32}),
        "id 1M chars": ("kb_delete", {"id": "1" * 10**6}),
    }
    for label, (tool, arguments) in odd.items():
        cases.append((label, *_post(port, tool, arguments)))
    for host in ("evil.example", "127.0.0.1:1@evil.example", "127.0.0.1:abc", "127.0.0.1:70000"):
        for path in ("/readyz", "/mcp/"):
            head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            cases.append((f"host {host} {path}", head, b""))
    for origin in ("http://localhost:abc", "http://localhost:99999"):
        head = (
            f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n"
            "Connection: close\r\n\r\n"
        )
        cases.append((f"origin {origin}", head, b""))
    get = f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    cases.append(("GET /mcp stream", get, b""))
    return cases


async def _closed_at(port: int, data: bytes) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await asyncio.wait_for(reader.read(), 60)
    writer.close()
    return time.perf_counter() - started


async def run(quick: bool) -> dict[str, Any]:
    async with open_database() as db:
        pool = await asyncpg.create_pool(
            **db.connect_kwargs(), init=init_connection, min_size=1, max_size=4
        )
        source = _Source(pool)
        await apply_migrations(source, dimensions=DIMENSIONS)
        embedder = Embedder(_Hashing(), model="hashing", dimensions=DIMENSIONS)
        app = build_http_app(
            build_mcp_server(AppContext(db=source, embedder=embedder)),
            readiness=_ready,
            auth=None,
            policy=OriginPolicy.for_bind("127.0.0.1"),
            limits=LIMITS,
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            **LIMITS.uvicorn_options(H11Protocol),
        )
        server = _Listening(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        await server.listening.wait()
        rows: list[list[object]] = []
        internal = 0
        longest = ("", 0.0)
        healthz = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        health_during = 0.0
        for label, head, body in _cases(port, quick):
            if "350000 tags" in label or ("100000 tags" in label and quick):
                big = asyncio.create_task(_request(port, head, body))
                _, _, health_during = await _request(port, healthz)
                status, answer, elapsed = await big
            else:
                status, answer, elapsed = await _request(port, head, body)
            bad = _internal(status, answer)
            internal += bad
            if elapsed > longest[1]:
                longest = (label, elapsed)
            rows.append([label, status, round(elapsed * 1000, 1), "INTERNAL" if bad else "clear"])
        print_table("hostile requests", ["input", "status", "ms", "answer"], rows)
        cap = LIMITS.max_connections
        writers = []
        closes = []
        for _ in range(2 * cap):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            closes.append(asyncio.create_task(_read_time(reader, time.perf_counter())))
        times = await asyncio.gather(*closes)
        for writer in writers:
            writer.close()
        refused = sum(1 for t in times if t < LIMITS.header_timeout_s / 2)
        slow_head = await asyncio.gather(
            *(_closed_at(port, b"POST /mcp HTTP/1.1\r\nHost: x\r\n") for _ in range(50))
        )
        slow_body = await asyncio.gather(
            *(
                _closed_at(
                    port,
                    f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Content-Length: 9999\r\n\r\n{".encode(),
                )
                for _ in range(50)
            )
        )
        status, _, _ = await _request(port, healthz)
        server.should_exit = True
        await task
        await pool.close()
    return {
        "inputs_tried": len(rows),
        "internal_errors": internal,
        "longest_response": {"input": longest[0], "ms": round(longest[1] * 1000, 1)},
        "healthz_during_largest_ms": round(health_during * 1000, 1),
        "idle_connections_opened": 2 * cap,
        "connections_not_refused": 2 * cap - refused,
        "connections_refused_on_arrival": refused,
        "idle_held_until_s": round(max(times), 2),
        "slow_header_closed_after_s_max": round(max(slow_head), 2),
        "slow_body_answered_408_after_s_max": round(max(slow_body), 2),
        "healthy_after": status == 200,
    }


async def _read_time(reader: asyncio.StreamReader, started: float) -> float:
    await reader.read()
    return time.perf_counter() - started


def main() -> None:
    args = bench_parser(__doc__ or "").parse_args()
    configure_logging(json_lines=True, level="WARNING")
    host = machine()
    figures = asyncio.run(run(args.quick))
    print_table("figures", ["figure", "value"], [[k, v] for k, v in figures.items()])
    finish("bench_hostile", figures, quick=args.quick, as_json=args.json, host=host)


if __name__ == "__main__":
    main()
