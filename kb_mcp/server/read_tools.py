"""The reading tools: kb_search, kb_get and kb_list.

Each runs inside `reporting.reported` (our errors become MCP tool errors) and within the
request budget (`kb_mcp.server.budget`); `kb_mcp.server.tools` registers them.
"""

from __future__ import annotations

from typing import Annotated, cast

from pydantic import Field

from kb_mcp.db.models import DocumentPage
from kb_mcp.db.search import SearchMode
from kb_mcp.errors import (
    ToolInputError,
)
from kb_mcp.server.arguments import (
    _ExternalId,
    _KeyNamespace,
    _Mode,
    _OptionalId,
    _TagFilter,
)
from kb_mcp.server.budget import (
    bounded,
)
from kb_mcp.server.cursors import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from kb_mcp.server.filter_args import (
    CreatedAfter,
    CreatedBefore,
    MetadataFilters,
    Namespace,
    TagsAny,
    UpdatedAfter,
    UpdatedBefore,
    document_filter,
)
from kb_mcp.server.lookups import lookup as _lookup
from kb_mcp.server.reporting import reported
from kb_mcp.server.results import (
    DocumentResult,
    DocumentSummary,
    ListResult,
    SearchHit,
    SearchResult,
)
from kb_mcp.server.tool_context import ToolContext, app_of, limit_field
from kb_mcp.server.validation import (
    MAX_QUERY_CHARS,
    check_limit,
    check_mode,
    check_query,
)

__all__ = ["kb_get", "kb_list", "kb_search"]


async def kb_search(
    ctx: ToolContext,
    query: Annotated[
        str,
        Field(
            strict=True,
            max_length=MAX_QUERY_CHARS * 2,
            description=f"What to look for, in natural language (1-{MAX_QUERY_CHARS} chars).",
            json_schema_extra={"minLength": 1, "maxLength": MAX_QUERY_CHARS},
        ),
    ],
    limit: Annotated[int, limit_field("hits")] = 5,
    tags: _TagFilter = None,
    mode: _Mode = "hybrid",
    min_score: Annotated[
        float,
        Field(
            ge=0.0,
            le=1.0,
            description="Leave out hits scoring below this (0 to 1; see each hit's score).",
        ),
    ] = 0.0,
    namespace: Namespace = "default",
    tags_any: TagsAny = None,
    metadata_filter: MetadataFilters = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    updated_after: UpdatedAfter = None,
    updated_before: UpdatedBefore = None,
) -> SearchResult:
    """Search the knowledge base by meaning and by words: documents ranked by their best passage.

    Each hit has the document's id, title, the best-matching passage (snippet) and a score;
    call kb_get with the id for the whole document. mode hybrid (default) fuses full-text
    and semantic rankings: "quoted phrases" must appear in that order, -word excludes, and
    identifiers or error codes find their document. vector ranks by meaning only, keyword
    by words only.
    """
    app = app_of(ctx)
    with reported("kb_search"):
        checked = check_query(query)
        checked_limit, checked_mode = check_limit(limit), cast("SearchMode", check_mode(mode))
        where = document_filter(
            namespace=namespace,
            tags=tags,
            tags_any=tags_any,
            metadata_filter=metadata_filter,
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            updated_before=updated_before,
        )
        hits = await bounded(
            app,
            "kb_search",
            lambda: app.search.search(
                checked,
                limit=checked_limit,
                mode=checked_mode,
                min_score=min_score,
                where=where,
            ),
        )
    return SearchResult(
        hits=[
            SearchHit(
                id=str(h.id),
                title=h.title,
                snippet=h.snippet,
                score=h.score,
                tags=h.tags,
                external_id=h.external_id,
                matched=list(h.matched),
                vector_score=h.vector_score,
                keyword_score=h.keyword_score,
                start=h.start,
                end=h.end,
                highlights=[list(span) for span in h.highlights],
            )
            for h in hits
        ]
    )


async def kb_get(
    ctx: ToolContext,
    id: _OptionalId = None,
    external_id: _ExternalId = None,
    namespace: _KeyNamespace = None,
) -> DocumentResult:
    """Read a whole document by its id (from kb_add, kb_search or kb_list), or by your
    external_id and its namespace: title, content, tags, metadata, namespace, timestamps."""
    app = app_of(ctx)
    with reported("kb_get"):
        lookup = _lookup(id, external_id, namespace)
        doc = await bounded(
            app,
            "kb_get",
            lambda: app.documents.get_document(
                lookup.document_id, namespace=lookup.namespace, external_id=lookup.external_id
            ),
        )
        if doc is None:
            raise ToolInputError(f"no document has {lookup}")
    return DocumentResult(
        id=str(doc.id),
        title=doc.title,
        content=doc.content,
        tags=doc.tags,
        metadata=doc.metadata,
        created_at=doc.created_at.isoformat(),
        updated_at=doc.updated_at.isoformat(),
        chunks=doc.chunks,
        namespace=doc.namespace,
        external_id=doc.external_id,
    )


async def kb_list(
    ctx: ToolContext,
    limit: Annotated[int, limit_field("documents per page")] = 20,
    cursor: Annotated[
        str | None,
        Field(
            strict=True,
            max_length=MAX_CURSOR_CHARS,
            description="next_cursor of the previous page; omit for the first.",
        ),
    ] = None,
    tags: _TagFilter = None,
    namespace: Namespace = "default",
    tags_any: TagsAny = None,
    metadata_filter: MetadataFilters = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    updated_after: UpdatedAfter = None,
    updated_before: UpdatedBefore = None,
) -> ListResult:
    """List documents of a namespace newest first, a page at a time (titles and tags, no
    content).

    Pass the answer's next_cursor as cursor for the next page. Filters: tags keeps only
    documents having every tag given, tags_any those having any of them; metadata_filter
    conditions on metadata keys; created/updated after or before an ISO date.
    """
    app = app_of(ctx)
    with reported("kb_list"):
        limit = check_limit(limit)
        where = document_filter(
            namespace=namespace,
            tags=tags,
            tags_any=tags_any,
            metadata_filter=metadata_filter,
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            updated_before=updated_before,
        )

        async def read() -> tuple[bytes, DocumentPage]:
            key = await app.cursors.key(app.documents.cursor_key)
            page = await app.documents.list_documents(
                limit=limit, cursor=decode_cursor(cursor, key=key), where=where
            )
            return key, page

        key, page = await bounded(app, "kb_list", read)
    return ListResult(
        documents=[
            DocumentSummary(
                id=str(d.id),
                title=d.title,
                tags=d.tags,
                created_at=d.created_at.isoformat(),
                updated_at=d.updated_at.isoformat(),
                namespace=d.namespace,
                external_id=d.external_id,
            )
            for d in page.documents
        ],
        total=page.total,
        next_cursor=encode_cursor(page.next_cursor, key=key) if page.next_cursor else None,
    )
