"""What the document queries return: an add's outcome, a search hit, a document, a page.

Plain frozen values (no connection, no behaviour), shared by the store's parts
(`kb_mcp.db.adding`, `kb_mcp.db.nearest`, `kb_mcp.db.lookup`, `kb_mcp.db.listing`), the
bulk paths and the tools that turn them into results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from kb_mcp.db.dedupe import StoredDuplicate
from kb_mcp.db.filters import DEFAULT_NAMESPACE

__all__ = [
    "AddStatus",
    "AddedDocument",
    "Document",
    "DocumentPage",
    "DocumentSummary",
    "PageCursor",
    "Restored",
    "SearchHit",
]

AddStatus = Literal["created", "updated", "unchanged", "duplicate"]


@dataclass(frozen=True, slots=True)
class Restored:
    """What a document restored from an export keeps when the add creates it: its id (the
    caller checked no document holds it) and its timestamps (`kb-mcp import`)."""

    id: UUID | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    """None: `created_at` when that is given, else now."""


@dataclass(frozen=True, slots=True)
class AddedDocument:
    id: UUID
    chunks: int
    status: AddStatus = "created"
    embedded: int = 0
    """Chunks embedded for this add (created: all; updated: those not already stored)."""
    reused: int = 0
    """Chunks whose stored vector was reused (updated only)."""
    stored: StoredDuplicate | None = None
    """duplicate only: the stored document (its title, tags, metadata were kept)."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: UUID
    title: str
    snippet: str
    score: float
    tags: list[str] = field(default_factory=list)
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    id: UUID
    title: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    chunks: int
    namespace: str = DEFAULT_NAMESPACE
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    id: UUID
    title: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    namespace: str = DEFAULT_NAMESPACE
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where the next page starts: strictly older than this (created_at, id)."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class DocumentPage:
    documents: list[DocumentSummary]
    total: int
    next_cursor: PageCursor | None
