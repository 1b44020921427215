"""The knowledge-base MCP tools: kb_add, kb_search, kb_get, kb_list, kb_delete, kb_update
(and, registered from `namespace_tools`, kb_add_many, kb_namespaces, kb_delete_namespace).

`build_mcp_server(context)` returns an `MCPServer` whose lifespan yields the
`AppContext` (given directly, or built by a factory), read by every tool call.

Every tool body runs inside `reporting.reported`, the one place our errors become MCP
tool errors (`is_error` results), and within the request budget (`kb_mcp.server.budget`:
connection loss is ridden through); one past it says so, and how far its write got.

Argument types and sizes are enforced by pydantic before a tool runs, strictly: `limit`
is a JSON integer (`true`, `"5"` and `1.0` are refused), strings are strings, and every
list and string carries its limit (`max_length`), so pydantic refuses a 400k-tag list
after reading 33 items rather than validating them all. The validators then check what
a type cannot say.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from kb_mcp.db.dedupe import NearDuplicate
from kb_mcp.db.models import AddedDocument, DocumentPage
from kb_mcp.db.search import SearchMode
from kb_mcp.errors import (
    ToolInputError,
)
from kb_mcp.server.arguments import (
    _Content,
    _DedupeThreshold,
    _ExternalId,
    _Metadata,
    _Mode,
    _NewContent,
    _NewMetadata,
    _NewTags,
    _NewTitle,
    _TagFilter,
    _Tags,
    _Title,
)
from kb_mcp.server.budget import (
    RESOLVED_ONCE,
    WRITES,
    bounded,
    outcome_so_far,
    request_scope,
)
from kb_mcp.server.context import AppContext, ContextFactory
from kb_mcp.server.cursors import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from kb_mcp.server.filter_args import (
    CreatedAfter,
    CreatedBefore,
    MetadataFilters,
    Namespace,
    TagsAny,
    UpdatedAfter,
    UpdatedBefore,
    check_namespace,
    document_filter,
)
from kb_mcp.server.lookups import ignored_fields
from kb_mcp.server.lookups import lookup as _lookup
from kb_mcp.server.reporting import ADD_UNKNOWN, NEAR_UNCHECKED, UPDATE_UNKNOWN, reported
from kb_mcp.server.resources import register_document_resources
from kb_mcp.server.results import (
    AddResult,
    DeleteResult,
    DocumentResult,
    DocumentSummary,
    ListResult,
    NearDuplicateResult,
    SearchHit,
    SearchResult,
    UpdateResult,
)
from kb_mcp.server.strict_tools import StrictToolsServer
from kb_mcp.server.validation import (
    MAX_ID_CHARS,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    check_content,
    check_dedupe_threshold,
    check_external_id,
    check_limit,
    check_metadata,
    check_mode,
    check_query,
    check_tags,
    check_title,
    check_update,
)

__all__ = ["SERVER_NAME", "build_mcp_server"]

SERVER_NAME = "kb-mcp"
_INSTRUCTIONS = (
    "A searchable knowledge base. Store documents with kb_add, find passages with kb_search "
    "(hybrid full-text and semantic search; the snippet is the best-matching passage), read "
    "a whole document with kb_get (or as the resource kb://documents/{id}), page through "
    "documents with kb_list, revise one in place with kb_update, remove one with kb_delete."
)

ToolContext = Context[AppContext, Any]


def _limit(what: str) -> Any:
    return Field(
        strict=True,
        description=f"How many {what}, an integer from 1 to {MAX_LIMIT}.",
        json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
    )


# -- tools ---------------------------------------------------------------------------


async def kb_add(
    ctx: ToolContext,
    title: _Title,
    content: _Content,
    tags: _Tags,
    metadata: _Metadata,
    external_id: _ExternalId = None,
    dedupe_threshold: _DedupeThreshold = None,
    namespace: Namespace = "default",
) -> AddResult:
    """Store a document; its content is split into passages and embedded for search.

    With external_id, adding the same key again updates that document (or leaves it
    alone when nothing changed): retrying a failed or unknown add never makes a copy.
    Without one, content identical to a stored document's is not stored twice: the
    existing id comes back with status "duplicate", and `ignored` names the given
    title, tags or metadata that differ from the stored document's (not stored).
    """
    app = _app(ctx)
    with reported("kb_add", failure="nothing was stored", unknown=ADD_UNKNOWN):
        async with request_scope(app, "kb_add"):
            checked_content = check_content(content)
            args = (check_title(title), check_tags(tags), check_metadata(metadata))
            threshold = check_dedupe_threshold(dedupe_threshold)
            key = check_external_id(external_id)
            space = check_namespace(namespace) or "default"

            async def store() -> AddedDocument:
                # A caller's own key names the document: identity by key, not by content.
                existing = (
                    None
                    if key is not None
                    else await app.duplicates.identical(checked_content, space)
                )
                if existing is not None:
                    added = AddedDocument(
                        existing.id, existing.chunks, "duplicate", stored=existing
                    )
                else:
                    added = await app.documents.add_document(
                        title=args[0],
                        content=checked_content,
                        tags=args[1],
                        metadata=args[2],
                        external_id=key,
                        dedupe=True,
                        namespace=space,
                    )
                if added.status == "duplicate" and outcome_so_far() == "unknown":
                    # An earlier attempt's commit was cut off; this one found what it stored.
                    added = dataclasses.replace(added, status="created", stored=None)
                return added

            added = await bounded(app, "kb_add", store, retry_on=WRITES, retry_once=RESOLVED_ONCE)
            near: list[NearDuplicate] = []
            if threshold is not None and added.status != "duplicate":
                with reported("kb_add", failure=NEAR_UNCHECKED):
                    near = await bounded(
                        app, "kb_add", lambda: app.duplicates.near(added.id, threshold=threshold)
                    )
    return AddResult(
        id=str(added.id),
        chunks=added.chunks,
        status=added.status,
        near_duplicates=[
            NearDuplicateResult(id=str(n.id), title=n.title, similarity=n.similarity) for n in near
        ],
        ignored=ignored_fields(added.stored, *args) if added.stored is not None else [],
    )


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
    limit: Annotated[int, _limit("hits")] = 5,
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
    app = _app(ctx)
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


_OptionalId = Annotated[
    str | None,
    Field(
        strict=True,
        max_length=MAX_ID_CHARS,
        description="Document id, as kb_add or kb_search returned it (or give external_id).",
    ),
]
_KeyNamespace = Annotated[
    str | None,
    Field(
        strict=True,
        max_length=64,
        description=(
            'With external_id: the key\'s namespace (default "default"); with id: '
            "the document must be in it (omit for any namespace)."
        ),
    ),
]


async def kb_get(
    ctx: ToolContext,
    id: _OptionalId = None,
    external_id: _ExternalId = None,
    namespace: _KeyNamespace = None,
) -> DocumentResult:
    """Read a whole document by its id (from kb_add, kb_search or kb_list), or by your
    external_id and its namespace: title, content, tags, metadata, namespace, timestamps."""
    app = _app(ctx)
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
    limit: Annotated[int, _limit("documents per page")] = 20,
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
    app = _app(ctx)
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


async def kb_update(
    ctx: ToolContext,
    id: _OptionalId = None,
    external_id: _ExternalId = None,
    title: _NewTitle = None,
    content: _NewContent = None,
    tags: _NewTags = None,
    metadata: _NewMetadata = None,
    namespace: _KeyNamespace = None,
) -> UpdateResult:
    """Revise a document in place: name it by its id, or by your external_id (and its
    namespace), and give only the fields to change.

    Each field given replaces the old one whole; the document keeps its id, and only
    passages whose text changed are re-embedded. Sending the same update again changes
    nothing, so a retry is safe. With id and namespace, the document must be in it.
    """
    app = _app(ctx)
    with reported("kb_update", failure="nothing was changed", unknown=UPDATE_UNKNOWN):
        lookup = _lookup(id, external_id, namespace)
        new_title, new_content, new_tags, new_metadata = check_update(
            title, content, tags, metadata
        )
        document_id = lookup.document_id
        if lookup.external_id is not None or lookup.namespace is not None:
            document_id = await bounded(
                app,
                "kb_update",
                lambda: app.documents.find_document_id(
                    lookup.document_id, namespace=lookup.namespace, external_id=lookup.external_id
                ),
            )
        if document_id is None:
            raise ToolInputError(f"no document has {lookup}")
        found = document_id
        revision = await bounded(
            app,
            "kb_update",
            lambda: app.reviser.revise(
                found,
                title=new_title,
                content=new_content,
                tags=new_tags,
                metadata=new_metadata,
            ),
            retry_on=WRITES,
            retry_once=RESOLVED_ONCE,
        )
        if revision is None:
            raise ToolInputError(f"no document has {lookup}")
    return UpdateResult(
        id=str(revision.id),
        changed=list(revision.changed),
        chunks=revision.chunks,
        embedded=revision.embedded,
        reused=revision.reused,
        updated_at=revision.updated_at.isoformat(),
    )


async def kb_delete(
    ctx: ToolContext,
    id: _OptionalId = None,
    external_id: _ExternalId = None,
    namespace: _KeyNamespace = None,
) -> DeleteResult:
    """Delete a document and its passages, by id or by your external_id (and its
    namespace); deleted is false when no document had it."""
    app = _app(ctx)
    with reported("kb_delete", failure="nothing was deleted"):
        lookup = _lookup(id, external_id, namespace)
        # Not retried: a DELETE cut off may have run, and a second one would answer false.
        deleted = await bounded(
            app,
            "kb_delete",
            lambda: app.documents.delete_document(
                lookup.document_id, namespace=lookup.namespace, external_id=lookup.external_id
            ),
            retry_on=(),
        )
    return DeleteResult(deleted=deleted)


# -- wiring --------------------------------------------------------------------------


def _package_version() -> str:
    """The installed kb-mcp's version (MCP serverInfo.version), from its package metadata."""
    try:
        return importlib.metadata.version("kb-mcp")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0+unknown"


def build_mcp_server(
    context: AppContext | ContextFactory, *, name: str = SERVER_NAME
) -> MCPServer[AppContext]:
    """The MCP server with its tools and document resources, its lifespan yielding `context`."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        if isinstance(context, AppContext):
            yield context
        else:
            async with context() as built:
                yield built

    root = logging.getLogger()
    before = list(root.handlers)
    # Unknown arguments refused, refused ones explained in plain words (strict_tools).
    server: MCPServer[AppContext] = StrictToolsServer(
        name, instructions=_INSTRUCTIONS, lifespan=lifespan, version=_package_version()
    )
    # The SDK calls logging.basicConfig, which installs its own unredacted handler when the
    # root logger has none yet; logging belongs to kb_mcp.observability, so undo that.
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(kb_add, name="kb_add", annotations=ToolAnnotations(open_world_hint=False))
    server.add_tool(kb_search, name="kb_search", annotations=read_only)
    server.add_tool(kb_get, name="kb_get", annotations=read_only)
    server.add_tool(kb_list, name="kb_list", annotations=read_only)
    server.add_tool(
        kb_update,
        name="kb_update",
        annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False),
    )
    register_document_resources(server)
    from kb_mcp.server.namespace_tools import register_namespace_tools

    register_namespace_tools(server)
    server.add_tool(
        kb_delete,
        name="kb_delete",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    return server


def _app(ctx: ToolContext) -> AppContext:
    return ctx.request_context.lifespan_context
