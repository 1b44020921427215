"""How kb_get, kb_update and kb_delete name a document (id or external_id), and what a duplicate add
did not store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kb_mcp.db.dedupe import StoredDuplicate
from kb_mcp.db.filters import DEFAULT_NAMESPACE
from kb_mcp.db.rewrite import load_metadata
from kb_mcp.errors import ToolInputError
from kb_mcp.server.filter_args import check_namespace
from kb_mcp.server.validation import check_external_id, parse_document_id

__all__ = ["DocumentLookup", "ignored_fields", "lookup"]


@dataclass(frozen=True, slots=True)
class DocumentLookup:
    """A document named by its id (optionally only in a namespace) or by its key."""

    document_id: UUID | None
    external_id: str | None
    namespace: str | None

    def __str__(self) -> str:
        if self.document_id is not None:
            where = f" in namespace {self.namespace}" if self.namespace else ""
            return f"id {self.document_id}{where}"
        return f"external_id {self.external_id!r} in namespace {self.namespace}"


def lookup(id: str | None, external_id: str | None, namespace: str | None) -> DocumentLookup:
    """Exactly one of `id` and `external_id`, checked; a key's namespace defaults."""
    if (id is None) == (external_id is None):
        raise ToolInputError("give exactly one of id or external_id")
    if id is not None:
        return DocumentLookup(parse_document_id(id), None, check_namespace(namespace, default=None))
    return DocumentLookup(
        None, check_external_id(external_id), check_namespace(namespace) or DEFAULT_NAMESPACE
    )


def ignored_fields(
    stored: StoredDuplicate, title: str, tags: list[str], metadata: dict[str, Any]
) -> list[str]:
    """The fields of a duplicate add that differ from the stored document (not stored)."""
    ignored = []
    if title != stored.title:
        ignored.append("title")
    if list(tags) != list(stored.tags):
        ignored.append("tags")
    if metadata != load_metadata(stored.metadata):
        ignored.append("metadata")
    return ignored
