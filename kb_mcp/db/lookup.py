"""One document by its id or by its key: get it whole, find its id, or delete it.

A document is named by its id (optionally only in a namespace) or by its `external_id`
in a namespace (default: the default namespace); an `external_id` is unique within its
namespace (migration 0008). Metadata comes back with its floats as floats
(`kb_mcp.db.rewrite.load_metadata`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import structlog

from kb_mcp.db.filters import DEFAULT_NAMESPACE
from kb_mcp.db.models import Document
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import ConnectionSource
from kb_mcp.db.rewrite import load_metadata

__all__ = ["DocumentLookup", "document_from_row", "document_key"]

log = structlog.get_logger(__name__)

_GET = (
    "SELECT d.id, d.title, d.content, d.tags, d.metadata::text AS metadata, "
    "d.created_at, d.updated_at, d.namespace, d.external_id, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
    "FROM documents d WHERE "
)


def document_key(
    alias: str, document_id: UUID | None, namespace: str | None, external_id: str | None
) -> tuple[str, tuple[object, ...]]:
    """The predicate (over `alias`, parameters $1 and $2) naming one document, and its values:
    by id (in `namespace` when given), else by `external_id` in `namespace` (or the default)."""
    if document_id is not None:
        return (
            f"{alias}.id = $1 AND ($2::text IS NULL OR {alias}.namespace = $2)",
            (document_id, namespace),
        )
    return (
        f"{alias}.external_id = $1 AND {alias}.namespace = $2",
        (external_id, namespace or DEFAULT_NAMESPACE),
    )


class DocumentLookup:
    """get, find and delete of one document through any `ConnectionSource`."""

    def __init__(self, source: ConnectionSource) -> None:
        self._source = source

    async def find_id(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> UUID | None:
        """The id of the document so named (by id in `namespace`, or by key), or None."""
        where, key = document_key("d", document_id, namespace, external_id)
        async with database_errors("get"), self._source.acquire() as conn:
            found: UUID | None = await conn.fetchval(
                f"SELECT d.id FROM documents d WHERE {where}",  # noqa: S608 (fixed text)
                *key,
            )
        return found

    async def get(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> Document | None:
        """One document with its full content, or None."""
        where, key = document_key("d", document_id, namespace, external_id)
        async with database_errors("get"), self._source.acquire() as conn:
            row = await conn.fetchrow(_GET + where, *key)
        if row is None:
            return None
        return document_from_row(row)

    async def delete(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> bool:
        """Delete a document and its chunks; False when there was none."""
        where, key = document_key("d", document_id, namespace, external_id)
        async with database_errors("delete"), self._source.acquire() as conn:
            deleted: UUID | None = await conn.fetchval(
                f"DELETE FROM documents d WHERE {where} RETURNING id",  # noqa: S608 (fixed text)
                *key,
            )
        if deleted is not None:
            log.info("kb.document_deleted", document_id=str(deleted))
        return deleted is not None


def document_from_row(row: Mapping[str, Any]) -> Document:
    """A `Document` from a row of `documents` with its `chunks` count (get, export)."""
    return Document(
        id=row["id"],
        title=row["title"],
        content=row["content"],
        tags=list(row["tags"]),
        metadata=load_metadata(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        chunks=int(row["chunks"]),
        namespace=row["namespace"],
        external_id=row["external_id"],
    )
