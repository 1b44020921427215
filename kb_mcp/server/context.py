"""What MCP tools and HTTP handlers read: a frozen `AppContext`, and readiness.

The runtime builds one `AppContext` (its pool manager as `db`, an `Embedder` over its
OpenAI client holder) and hands it to `build_mcp_server`; tools read it from the MCP
lifespan. `Readiness` is any async callable returning a `ReadinessReport`: the runtime's
`Runtime.health` is one (tests have a plain one, `tests/support/readiness.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from kb_mcp.db.dedupe import DuplicateFinder
from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.port import ConnectionSource
from kb_mcp.db.revise import DocumentReviser
from kb_mcp.db.ridethrough import Reconnect, probe_source
from kb_mcp.db.search import HybridSearch
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.server.cursors import CursorSigner

__all__ = [
    "AppContext",
    "ContextFactory",
    "Readiness",
    "ReadinessReport",
]


class ReadinessReport(Protocol):
    """What `/readyz` renders: a verdict and a JSON body naming versions, never values."""

    @property
    def ready(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


Readiness = Callable[[], Awaitable[ReadinessReport]]
"""Checks readiness now (secrets loaded, database answering)."""


@dataclass(frozen=True, slots=True)
class AppContext:
    """Everything a tool call needs, fixed for the server's lifetime."""

    db: ConnectionSource
    embedder: Embedder
    readiness: Readiness | None = None
    cursors: CursorSigner = field(default_factory=CursorSigner)
    """Signs `kb_list` cursors with the knowledge base's key (read once)."""
    session_ef_search: int | None = None
    """The `hnsw.ef_search` `db`'s connections have for their session (`DocumentStore`)."""
    request_timeout_s: float = 30.0
    """The budget of each tool call and resource read (`kb_mcp.deadline`)."""
    reconnect: Reconnect | None = None
    """Shared by every request riding through a database outage (`kb_mcp.db.ridethrough`);
    None: one built over `db`."""

    def __post_init__(self) -> None:
        if self.reconnect is None:
            object.__setattr__(self, "reconnect", Reconnect(probe_source(self.db)))

    @property
    def documents(self) -> DocumentStore:
        """The document store over this context's database and embedder."""
        return DocumentStore(self.db, self.embedder, session_ef_search=self.session_ef_search)

    @property
    def search(self) -> HybridSearch:
        """Hybrid, vector and keyword search over this context's documents."""
        return HybridSearch(self.db, self.documents)

    @property
    def reviser(self) -> DocumentReviser:
        """In-place updates of this context's documents."""
        return DocumentReviser(self.db, self.embedder)

    @property
    def duplicates(self) -> DuplicateFinder:
        """Identical and near-duplicate lookups."""
        return DuplicateFinder(self.db, dimensions=self.embedder.dimensions)


ContextFactory = Callable[[], AbstractAsyncContextManager[AppContext]]
"""Builds the context when the MCP server starts and tears it down when it stops."""
