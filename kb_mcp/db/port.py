"""What storage code needs: a source of connections, and something that embeds text.

`PoolManager` implements it (with hot-swappable pools); tests may use any object with an
`acquire()` async context manager yielding an asyncpg connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeAlias

import asyncpg

__all__ = ["AnyConnection", "ConnectionSource", "TextEmbedder"]

AnyConnection: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"
"""A plain connection or the proxy a pool hands out (same query API)."""


class ConnectionSource(Protocol):
    """Hands out asyncpg connections; release happens when the context exits."""

    def acquire(self) -> AbstractAsyncContextManager[AnyConnection]:
        """A connection for the duration of the `async with` block."""
        ...


class TextEmbedder(Protocol):
    """What the store needs from `kb_mcp.embeddings.embedder.Embedder`."""

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_one(self, text: str) -> list[float]: ...
