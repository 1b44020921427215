"""Wiring of the MCP server: its lifespan, its logging manners, and shutdown errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from mcp import Client
from mcp_types import TextContent

from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.errors import ResourceClosedError
from kb_mcp.server.context import AppContext
from kb_mcp.server.tools import build_mcp_server


class ClosedSource:
    """A `ConnectionSource` that has been closed, as the pool manager is during shutdown."""

    def acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection[Any]]:
        raise ResourceClosedError("pool manager is closed")


class ConstantBackend:
    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]


def _context() -> AppContext:
    return AppContext(
        db=ClosedSource(), embedder=Embedder(ConstantBackend(), model="m", dimensions=2)
    )


def test_building_the_server_adds_no_log_handler() -> None:
    """The SDK's logging.basicConfig must not leave an unredacted handler on the root logger."""
    root = logging.getLogger()
    saved = root.handlers[:]
    for handler in saved:
        root.removeHandler(handler)
    try:
        build_mcp_server(_context())
        assert root.handlers == []
    finally:
        for handler in saved:
            root.addHandler(handler)


async def test_a_context_factory_is_entered_for_the_servers_lifetime() -> None:
    """With a factory, the context is built when the server starts and closed when it stops."""
    events: list[str] = []

    @asynccontextmanager
    async def factory() -> AsyncIterator[AppContext]:
        events.append("open")
        yield _context()
        events.append("close")

    async with Client(build_mcp_server(factory)) as client:
        assert len((await client.list_tools()).tools) == 9
        assert events == ["open"]
    assert events == ["open", "close"]


async def test_a_closed_runtime_is_reported_as_shutting_down() -> None:
    """A tool call racing the shutdown gets a retryable message, not a crash."""
    async with Client(build_mcp_server(_context())) as client:
        result = await client.call_tool("kb_list", {})
    assert result.is_error
    text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
    assert "the server is shutting down; try again" in text
