"""Namespaces: which exist (with their document counts), and deleting one whole.

A namespace exists while it holds a document (there is no namespace table: a document's
`namespace` column, migration 0008, is the whole of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import ConnectionSource

__all__ = ["NamespaceCount", "NamespaceStore"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NamespaceCount:
    name: str
    documents: int


class NamespaceStore:
    """Namespace-wide queries over `documents` (chunks follow by ON DELETE CASCADE)."""

    def __init__(self, source: ConnectionSource) -> None:
        self._source = source

    async def counts(self) -> list[NamespaceCount]:
        """Every namespace holding documents, by name, with how many it holds."""
        async with database_errors("list namespaces"), self._source.acquire() as conn:
            rows = await conn.fetch(
                "SELECT namespace, count(*) AS documents FROM documents "
                "GROUP BY namespace ORDER BY namespace"
            )
        return [NamespaceCount(row["namespace"], int(row["documents"])) for row in rows]

    async def count(self, namespace: str) -> int:
        """How many documents `namespace` holds."""
        async with database_errors("count namespace"), self._source.acquire() as conn:
            value = await conn.fetchval(
                "SELECT count(*) FROM documents WHERE namespace = $1", namespace
            )
        return int(value)

    async def delete(self, namespace: str) -> int:
        """Delete every document of `namespace` (one transaction); how many were deleted."""
        async with database_errors("delete namespace"), self._source.acquire() as conn:
            status = await conn.execute("DELETE FROM documents WHERE namespace = $1", namespace)
        deleted = int(status.split()[-1])
        log.info("kb.namespace_deleted", namespace=namespace, documents=deleted)
        return deleted
