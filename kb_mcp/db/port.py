"""What storage code needs from the database layer: a source of connections.

`PoolManager` implements it (with hot-swappable pools); tests may use any object with an
`acquire()` async context manager yielding an asyncpg connection.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeAlias

import asyncpg

__all__ = ["AnyConnection", "ConnectionSource"]

AnyConnection: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"
"""A plain connection or the proxy a pool hands out (same query API)."""


class ConnectionSource(Protocol):
    """Hands out asyncpg connections; release happens when the context exits."""

    def acquire(self) -> AbstractAsyncContextManager[AnyConnection]:
        """A connection for the duration of the `async with` block."""
        ...
