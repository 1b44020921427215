"""The load side of `kb-mcp drill`: MCP clients calling `kb_add`/`kb_search`, and the stats.

Each worker holds its own MCP client over streamable HTTP and records every call: when
it started, how long it took, and whether it failed (a protocol error or a tool error).
Workers, records and percentiles are the shared harness in `kb_mcp.hotswap.load`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from kb_mcp.hotswap import load
from kb_mcp.hotswap.load import CallRecord, LoadStats, percentiles

__all__ = [
    "CallRecord",
    "DrillStats",
    "LoadStats",
    "Workload",
    "delete_documents",
    "mcp_client",
    "percentiles",
    "run_worker",
]

TOPICS = (
    "rotating postgres credentials with two alternating login roles",
    "draining an asyncpg pool before closing it",
    "openai api keys kept in aws secrets manager",
    "embedded metric format lines for cloudwatch",
    "least privilege iam policies for ecs task roles",
    "hnsw indexes for cosine distance in pgvector",
)


@dataclass
class DrillStats(LoadStats):
    """The harness's call records, plus the documents `kb_add` stored (removed afterwards)."""

    added_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Workload:
    """How workers choose their calls: relative weights of `kb_add` and `kb_search`."""

    add_weight: int = 1
    search_weight: int = 4

    @classmethod
    def parse(cls, text: str) -> Workload:
        """`add:1,search:4` (either part may be omitted)."""
        weights = {"add": 0, "search": 0}
        for part in text.split(","):
            name, _, value = part.strip().partition(":")
            if name not in weights or not value.isdigit():
                raise ValueError(f"bad mix {text!r}: use e.g. add:1,search:4")
            weights[name] = int(value)
        if not any(weights.values()):
            raise ValueError("the mix needs at least one non-zero weight")
        return cls(add_weight=weights["add"], search_weight=weights["search"])

    def choose(self, rng: random.Random) -> str:
        total = self.add_weight + self.search_weight
        return "kb_add" if rng.uniform(0, total) < self.add_weight else "kb_search"


@asynccontextmanager
async def mcp_client(url: str, token: str | None) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def _arguments(tool: str, rng: random.Random, worker: int, n: int) -> dict[str, Any]:
    topic = rng.choice(TOPICS)
    if tool == "kb_add":
        return {
            "title": f"drill note {worker}-{n}",
            "content": f"Drill note about {topic}. Written by worker {worker}, call {n}.",
            "tags": ["drill"],
        }
    return {"query": topic, "limit": 5}


def _added_id(result: Any) -> str | None:
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, dict):
        value = structured.get("id") or (structured.get("result") or {}).get("id")
        if isinstance(value, str):
            return value
    return None


async def delete_documents(url: str, token: str | None, ids: list[str]) -> tuple[int, int]:
    """Delete `ids` with `kb_delete`; (deleted, failed)."""
    deleted = failed = 0
    async with mcp_client(url, token) as client:
        for document_id in ids:
            try:
                result = await client.call_tool("kb_delete", {"id": document_id})
            except Exception:  # counted and reported by the caller, whatever the cause
                failed += 1
                continue
            if _tool_error(result) is None:
                deleted += 1
            else:
                failed += 1
    return deleted, failed


def _tool_error(result: Any) -> str | None:
    if not getattr(result, "is_error", False):
        return None
    texts = [getattr(block, "text", "") for block in getattr(result, "content", [])]
    return ("tool error: " + " ".join(t for t in texts if t))[:300]


async def run_worker(
    url: str,
    token: str | None,
    workload: Workload,
    stats: DrillStats,
    stop: asyncio.Event,
    *,
    worker: int,
    seed: int,
) -> None:
    """Call tools until `stop`; every call, failed or not, is recorded."""
    try:
        await _calls(url, token, workload, stats, stop, seed, worker)
    except Exception as exc:  # an unreachable server is a failure to report, not a crash
        error = f"connection: {type(exc).__name__}: {exc}"[:300]
        stats.records.append(CallRecord("connect", time.monotonic(), 0.0, error))


async def _calls(
    url: str,
    token: str | None,
    workload: Workload,
    stats: DrillStats,
    stop: asyncio.Event,
    seed: int,
    worker: int,
) -> None:
    async with mcp_client(url, token) as client:

        async def call(tool: str, rng: random.Random, n: int) -> str | None:
            result = await client.call_tool(tool, _arguments(tool, rng, worker, n))
            error = _tool_error(result)
            added = _added_id(result) if tool == "kb_add" and error is None else None
            if added is not None:
                stats.added_ids.append(added)
            return error

        await load.run_worker(workload.choose, call, stats, stop, seed=seed)
