"""Every stored document, in a stable order, a batch at a time: what `kb-mcp export` writes.

Keyset-paged by (namespace, created_at, id), so a dump of any size holds one batch in
memory and a document added during the dump is either in it or not, never twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

from kb_mcp.db.lookup import document_from_row
from kb_mcp.db.models import Document
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import ConnectionSource

__all__ = ["dump_documents"]

_PAGE = (
    "SELECT id, namespace, external_id, title, content, tags, metadata::text AS metadata,"
    " created_at, updated_at,"
    " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks"
    " FROM documents d"
    " WHERE ($1::text IS NULL OR namespace = $1)"
    " AND ($2::text IS NULL OR (namespace, created_at, id) > ($2, $3::timestamptz, $4::uuid))"
    " ORDER BY namespace, created_at, id LIMIT $5"
)


async def dump_documents(
    source: ConnectionSource, *, namespace: str | None = None, batch: int = 200
) -> AsyncIterator[Document]:
    """Every document (of `namespace`, or of all), oldest first within each namespace."""
    after: tuple[str | None, datetime | None, UUID | None] = (None, None, None)
    while True:
        async with database_errors("export"), source.acquire() as conn:
            rows = await conn.fetch(_PAGE, namespace, *after, batch)
        for row in rows:
            yield document_from_row(row)
        if len(rows) < batch:
            return
        last = rows[-1]
        after = (last["namespace"], last["created_at"], last["id"])
