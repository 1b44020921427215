"""Listing documents newest first, keyset-paged by `(created_at, id)`.

- `page`: a namespace's documents passing a filter, with the total count of those passing
  (`kb_list`, the namespace resources); index `(namespace, created_at, id)` (migration 0008).
- `page_everywhere`: the documents of every namespace, no count (`resources/list`); index
  `(created_at, id)` (migration 0001), so a page reads its rows and one more, whatever the
  size of the knowledge base.

A cursor is the last row's pair: the next page is strictly older. `cursor_key` is the key
that signs those cursors, shared by every task (migration 0002).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kb_mcp.db.filters import DocumentFilter
from kb_mcp.db.models import DocumentPage, DocumentSummary, PageCursor
from kb_mcp.db.outcome import database_errors
from kb_mcp.db.port import ConnectionSource
from kb_mcp.errors import DatabaseError

__all__ = ["DocumentListing"]

_EVERYWHERE = (
    "SELECT id, title, tags, created_at, updated_at, namespace, external_id "
    "FROM documents d WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::uuid)) "
    "ORDER BY created_at DESC, id DESC LIMIT $3"
)


class DocumentListing:
    """Pages of document summaries through any `ConnectionSource`."""

    def __init__(self, source: ConnectionSource) -> None:
        self._source = source

    async def cursor_key(self) -> bytes:
        """The key that signs `kb_list` cursors, shared by every task (migration 0002)."""
        async with database_errors("list"), self._source.acquire() as conn:
            key = await conn.fetchval("SELECT key FROM cursor_keys WHERE id")
        if not key:
            raise DatabaseError("database has no cursor key (migration 0002 not applied)")
        return str(key).encode("ascii")

    async def page(
        self,
        *,
        limit: int,
        cursor: PageCursor | None = None,
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> DocumentPage:
        """A page of documents, newest first, and how many pass the filter in all."""
        flt = where or DocumentFilter.of(tags=tags)
        after_time = cursor.created_at if cursor else None
        after_id = cursor.id if cursor else None
        predicate, params = flt.predicate("d", 5)
        # The filter's SQL is fixed text; every value is a parameter.
        page_sql = (
            "SELECT id, title, tags, created_at, updated_at, namespace, external_id "  # noqa: S608
            f"FROM documents d WHERE namespace = $1 AND {predicate} "
            "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid)) "
            "ORDER BY created_at DESC, id DESC LIMIT $4"
        )
        count_predicate, count_params = flt.predicate("d", 2)
        count_sql = f"SELECT count(*) FROM documents d WHERE namespace = $1 AND {count_predicate}"  # noqa: S608
        async with database_errors("list"), self._source.acquire() as conn:
            rows = await conn.fetch(
                page_sql, flt.namespace, after_time, after_id, limit + 1, *params
            )
            total = await conn.fetchval(count_sql, flt.namespace, *count_params)
        page, next_cursor = _paged(rows, limit)
        return DocumentPage(documents=page, total=int(total), next_cursor=next_cursor)

    async def page_everywhere(
        self, *, limit: int, cursor: PageCursor | None = None
    ) -> tuple[list[DocumentSummary], PageCursor | None]:
        """A page of the documents of every namespace, newest first, and the next cursor."""
        after_time = cursor.created_at if cursor else None
        after_id = cursor.id if cursor else None
        async with database_errors("list"), self._source.acquire() as conn:
            rows = await conn.fetch(_EVERYWHERE, after_time, after_id, limit + 1)
        return _paged(rows, limit)


def _paged(rows: Sequence[Any], limit: int) -> tuple[list[DocumentSummary], PageCursor | None]:
    """The first `limit` rows as summaries, and a cursor after them when there were more."""
    page = [
        DocumentSummary(
            id=row["id"],
            title=row["title"],
            tags=list(row["tags"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            namespace=row["namespace"],
            external_id=row["external_id"],
        )
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    return page, (PageCursor(page[-1].created_at, page[-1].id) if more and page else None)
