"""Documents and their embedded chunks in PostgreSQL: add, search, get, list, delete.

`DocumentStore` is the one object the tools and the bulk paths hold; it expects
validated input (`kb_mcp.server.validation` checks it first) and hands each job to the
module that does it:

- add (`kb_mcp.db.adding`): embed the chunks first, then write the document and its chunks
  in one transaction; idempotent by `external_id`, `duplicate` by content with `dedupe`;
  the commit's outcome told truly (`kb_mcp.db.outcome`).
- search (`kb_mcp.db.nearest`): documents ranked by their best chunk's cosine similarity,
  HNSW candidates through the filter, exact when too few pass.
- get, find and delete (`kb_mcp.db.lookup`): one document by id (optionally only in a
  namespace) or by a namespace and key.
- list (`kb_mcp.db.listing`): a namespace's documents passing the filter, newest first,
  keyset-paged by `(created_at, id)`, with the total count; or every namespace's (the
  `resources/list` listing, no count).

What they return is in `kb_mcp.db.models`. asyncpg and socket errors become
`DatabaseError` (`DatabaseUnavailableError` when the connection is the problem) naming the
operation, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from kb_mcp.db.adding import DocumentAdder
from kb_mcp.db.filters import DEFAULT_NAMESPACE, DocumentFilter
from kb_mcp.db.listing import DocumentListing
from kb_mcp.db.lookup import DocumentLookup
from kb_mcp.db.models import (
    AddedDocument,
    Document,
    DocumentPage,
    DocumentSummary,
    PageCursor,
    SearchHit,
)
from kb_mcp.db.nearest import SNIPPET_CHARS, VectorSearch, search_candidates
from kb_mcp.db.port import AnyConnection, ConnectionSource, TextEmbedder
from kb_mcp.db.rewrite import load_metadata
from kb_mcp.db.vectors import init_connection

__all__ = [
    "SNIPPET_CHARS",
    "AddedDocument",
    "Document",
    "DocumentPage",
    "DocumentStore",
    "DocumentSummary",
    "PageCursor",
    "SearchHit",
    "TextEmbedder",
    "init_connection",
    "load_metadata",
    "search_candidates",
]


class DocumentStore:
    """Queries over `documents` and `chunks` through any `ConnectionSource`."""

    def __init__(
        self,
        source: ConnectionSource,
        embedder: TextEmbedder,
        *,
        session_ef_search: int | None = None,
    ) -> None:
        """`session_ef_search`: the `hnsw.ef_search` every connection of `source` already
        has for its session (`kb_mcp.db.vectors.init_connection` sets `SESSION_EF_SEARCH`);
        a search needing no more candidates than that is one statement, others (and every
        search when it is None) set it for a transaction of their own."""
        self._embedder = embedder
        self._adder = DocumentAdder(source, embedder)
        self._vector = VectorSearch(source, embedder, session_ef_search=session_ef_search)
        self._lookup = DocumentLookup(source)
        self._listing = DocumentListing(source)

    @property
    def dimensions(self) -> int:
        """The embedding dimension of the stored vectors."""
        return self._embedder.dimensions

    async def add_document(
        self,
        *,
        title: str,
        content: str,
        tags: Sequence[str],
        metadata: dict[str, Any],
        external_id: str | None = None,
        dedupe: bool = False,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> AddedDocument:
        """Embed the chunks, then store the document and its chunks in one transaction.

        With `external_id`, an equal document is left alone and a different one replaced
        in place; without one and with `dedupe`, identical content is not stored twice
        (`kb_mcp.db.adding`).
        """
        return await self._adder.add(
            title=title,
            content=content,
            tags=tags,
            metadata=metadata,
            external_id=external_id,
            dedupe=dedupe,
            namespace=namespace,
        )

    async def cursor_key(self) -> bytes:
        """The key that signs `kb_list` cursors, shared by every task (migration 0002)."""
        return await self._listing.cursor_key()

    async def search(
        self,
        query: str,
        *,
        limit: int,
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> list[SearchHit]:
        """Documents ranked by their best chunk's cosine similarity (`kb_mcp.db.nearest`)."""
        return await self._vector.search(query, limit=limit, tags=tags, where=where)

    async def query_vector(self, query: str) -> list[float]:
        """The query's embedding, as the vector parameter the search statements take."""
        return await self._vector.query_vector(query)

    async def fetch_nearest(
        self, conn: AnyConnection, statement: str, *args: object, candidates: int
    ) -> list[Any]:
        """Rows of `statement`, whose HNSW scan must see `hnsw.ef_search >= candidates`."""
        return await self._vector.fetch_nearest(conn, statement, *args, candidates=candidates)

    async def get_document(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> Document | None:
        """One document with its full content, or None: by id (in `namespace`, when given),
        or by `external_id` in `namespace` (default: the default namespace)."""
        return await self._lookup.get(document_id, namespace=namespace, external_id=external_id)

    async def find_document_id(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> UUID | None:
        """The id of the document `get_document` would find, or None (its content unread)."""
        return await self._lookup.find_id(document_id, namespace=namespace, external_id=external_id)

    async def list_documents(
        self,
        *,
        limit: int,
        cursor: PageCursor | None = None,
        tags: Sequence[str] | None = None,
        where: DocumentFilter | None = None,
    ) -> DocumentPage:
        """A page of documents, newest first, and how many pass the filter in all."""
        return await self._listing.page(limit=limit, cursor=cursor, tags=tags, where=where)

    async def list_every_namespace(
        self, *, limit: int, cursor: PageCursor | None = None
    ) -> tuple[list[DocumentSummary], PageCursor | None]:
        """A page of the documents of every namespace, newest first (no count), and the
        cursor of the next page (None on the last)."""
        return await self._listing.page_everywhere(limit=limit, cursor=cursor)

    async def delete_document(
        self,
        document_id: UUID | None = None,
        *,
        namespace: str | None = None,
        external_id: str | None = None,
    ) -> bool:
        """Delete a document and its chunks (by id or by key, as `get_document` finds it);
        False when there was none."""
        return await self._lookup.delete(document_id, namespace=namespace, external_id=external_id)
