"""The knowledge-base MCP tools: kb_add, kb_search, kb_get, kb_list, kb_delete.

`build_mcp_server(context)` returns an `MCPServer` whose lifespan yields the
`AppContext` (given directly, or built by a factory), read by every tool call.

This is the one place our errors become MCP tool errors (`is_error` results): a rejected
argument (`ToolInputError`) is reported with its message; a failing dependency
(`EmbeddingError`, `DatabaseError`) with a generic message naming it, the detail going to
the log only; a write whose commit was cut off says "outcome unknown" and how to retry.

Argument types and sizes are enforced by pydantic before a tool runs, strictly: `limit`
is a JSON integer (`true`, `"5"` and `1.0` are refused), strings are strings, and every
list and string carries its limit (`max_length`), so pydantic refuses a 400k-tag list
after reading 33 items rather than validating them all. The validators then check what
a type cannot say.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, Literal

import structlog
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from kb_mcp.errors import (
    DatabaseError,
    DatabaseOutcomeUnknownError,
    EmbeddingError,
    ResourceClosedError,
    ToolInputError,
)
from kb_mcp.server.context import AppContext, ContextFactory
from kb_mcp.server.cursors import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from kb_mcp.server.validation import (
    MAX_CONTENT_CHARS,
    MAX_EXTERNAL_ID_CHARS,
    MAX_ID_CHARS,
    MAX_LIMIT,
    MAX_METADATA_BYTES,
    MAX_QUERY_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    check_content,
    check_external_id,
    check_limit,
    check_metadata,
    check_query,
    check_tags,
    check_title,
    parse_document_id,
)

__all__ = ["SERVER_NAME", "build_mcp_server"]

log = structlog.get_logger(__name__)

SERVER_NAME = "kb-mcp"
_INSTRUCTIONS = (
    "A searchable knowledge base. Store documents with kb_add, find passages with kb_search "
    "(semantic search; the snippet is the best-matching passage), read a whole document "
    "with kb_get, page through documents with kb_list, remove one with kb_delete."
)

ToolContext = Context[AppContext, Any]


# -- results -------------------------------------------------------------------------


class AddResult(BaseModel):
    id: str = Field(description="The document's id (a UUID).")
    chunks: int = Field(description="How many passages the content was split into.")
    status: Literal["created", "updated", "unchanged"] = Field(
        description=(
            "created: a new document; with an external_id already stored, updated (replaced "
            "in place, same id) or unchanged (identical, nothing written)."
        )
    )


class SearchHit(BaseModel):
    id: str = Field(description="Document id.")
    title: str
    snippet: str = Field(description="The passage of the document that matches best.")
    score: float = Field(description="Cosine similarity of that passage, 1.0 is identical.")
    tags: list[str]


class SearchResult(BaseModel):
    hits: list[SearchHit] = Field(description="Best match first.")


class DocumentResult(BaseModel):
    id: str
    title: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: str = Field(description="ISO 8601 timestamp.")
    updated_at: str = Field(description="ISO 8601 timestamp.")
    chunks: int


class DocumentSummary(BaseModel):
    id: str
    title: str
    tags: list[str]
    created_at: str
    updated_at: str


class ListResult(BaseModel):
    documents: list[DocumentSummary] = Field(description="Newest first.")
    total: int = Field(description="How many documents match the tag filter in all.")
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null at the end."
    )


class DeleteResult(BaseModel):
    deleted: bool = Field(description="False when no document had this id.")


# -- arguments -----------------------------------------------------------------------

_Title = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_TITLE_CHARS * 2,
        description=f"Document title, 1-{MAX_TITLE_CHARS} characters.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_TITLE_CHARS},
    ),
]
_Content = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_CONTENT_CHARS * 2,
        json_schema_extra={"minLength": 1, "maxLength": MAX_CONTENT_CHARS},
        description=(
            f"The document's full text, at most {MAX_CONTENT_CHARS} characters. Long text is "
            "split into passages, each embedded, so search finds the right passage."
        ),
    ),
]
_Tag = Annotated[str, Field(strict=True, max_length=MAX_TAG_CHARS * 2)]
_Tags = Annotated[
    list[_Tag],
    Field(
        strict=True,
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"Up to {MAX_TAGS} tags, each 1-{MAX_TAG_CHARS} characters.",
        json_schema_extra={"items": {"type": "string", "maxLength": MAX_TAG_CHARS}},
    ),
]
_Metadata = Annotated[
    dict[str, Any],
    Field(
        strict=True,
        default_factory=dict,
        max_length=MAX_METADATA_BYTES // 2,
        description=f"Any JSON object, at most {MAX_METADATA_BYTES} bytes serialized.",
    ),
]
_TagFilter = Annotated[
    list[_Tag] | None,
    Field(
        strict=True,
        max_length=MAX_TAGS,
        description=f"Only documents having every one of these tags (at most {MAX_TAGS}).",
    ),
]
_Id = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_ID_CHARS,
        description="Document id, as kb_add or kb_search returned it.",
    ),
]
_ExternalId = Annotated[
    str | None,
    Field(
        strict=True,
        max_length=MAX_EXTERNAL_ID_CHARS * 2,
        description=(
            "Your own key for this document, unique in the knowledge base "
            f"(1-{MAX_EXTERNAL_ID_CHARS} characters). Adding again with the same key "
            "updates the document instead of storing a copy, so a retry is always safe."
        ),
        json_schema_extra={"maxLength": MAX_EXTERNAL_ID_CHARS},
    ),
]


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
) -> AddResult:
    """Store a document; its content is split into passages and embedded for search.

    With external_id, adding the same key again updates that document (or leaves it
    alone when nothing changed): retrying a failed or unknown add never makes a copy.
    """
    with _reported("kb_add", failure="nothing was stored"):
        added = await _app(ctx).documents.add_document(
            title=check_title(title),
            content=check_content(content),
            tags=check_tags(tags),
            metadata=check_metadata(metadata),
            external_id=check_external_id(external_id),
        )
    return AddResult(id=str(added.id), chunks=added.chunks, status=added.status)


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
) -> SearchResult:
    """Semantic search: documents ranked by their passage closest in meaning to the query."""
    with _reported("kb_search"):
        hits = await _app(ctx).documents.search(
            check_query(query), limit=check_limit(limit), tags=check_tags(tags, what="tags")
        )
    return SearchResult(
        hits=[
            SearchHit(id=str(h.id), title=h.title, snippet=h.snippet, score=h.score, tags=h.tags)
            for h in hits
        ]
    )


async def kb_get(ctx: ToolContext, id: _Id) -> DocumentResult:
    """A whole document: title, content, tags, metadata and timestamps."""
    with _reported("kb_get"):
        document_id = parse_document_id(id)
        doc = await _app(ctx).documents.get_document(document_id)
        if doc is None:
            raise ToolInputError(f"no document has id {document_id}")
    return DocumentResult(
        id=str(doc.id),
        title=doc.title,
        content=doc.content,
        tags=doc.tags,
        metadata=doc.metadata,
        created_at=doc.created_at.isoformat(),
        updated_at=doc.updated_at.isoformat(),
        chunks=doc.chunks,
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
) -> ListResult:
    """Documents, newest first, a page at a time, optionally only those with given tags."""
    with _reported("kb_list"):
        app = _app(ctx)
        limit, tag_filter = check_limit(limit), check_tags(tags)
        key = await app.cursors.key(app.documents.cursor_key)
        page = await app.documents.list_documents(
            limit=limit, cursor=decode_cursor(cursor, key=key), tags=tag_filter
        )
    return ListResult(
        documents=[
            DocumentSummary(
                id=str(d.id),
                title=d.title,
                tags=d.tags,
                created_at=d.created_at.isoformat(),
                updated_at=d.updated_at.isoformat(),
            )
            for d in page.documents
        ],
        total=page.total,
        next_cursor=encode_cursor(page.next_cursor, key=key) if page.next_cursor else None,
    )


async def kb_delete(ctx: ToolContext, id: _Id) -> DeleteResult:
    """Delete a document and its passages."""
    with _reported("kb_delete"):
        deleted = await _app(ctx).documents.delete_document(parse_document_id(id))
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
    """The MCP server with the five tools, its lifespan yielding `context`."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        if isinstance(context, AppContext):
            yield context
        else:
            async with context() as built:
                yield built

    root = logging.getLogger()
    before = list(root.handlers)
    server: MCPServer[AppContext] = MCPServer(
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
        kb_delete,
        name="kb_delete",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    return server


def _app(ctx: ToolContext) -> AppContext:
    return ctx.request_context.lifespan_context


@contextmanager
def _reported(tool: str, *, failure: str = "") -> Iterator[None]:
    """Turn our errors into tool errors; dependency details go to the log only."""
    suffix = f"; {failure}" if failure else ""
    try:
        yield
    except ToolInputError as exc:
        log.info("tool.rejected", tool=tool, reason=str(exc))
        raise ToolError(str(exc)) from exc
    except EmbeddingError as exc:
        log.error(
            "tool.failed",
            tool=tool,
            dependency="embeddings",
            error=type(exc).__name__,
            detail=str(exc),
        )
        raise ToolError(f"the embeddings service failed{suffix}; try again later") from exc
    except DatabaseOutcomeUnknownError as exc:
        log.error("tool.failed", tool=tool, dependency="database", error=type(exc).__name__)
        raise ToolError(
            "the database connection was lost while committing: the outcome is unknown (the "
            "document may or may not be stored); retry with the same external_id to store "
            "it exactly once"
        ) from exc
    except DatabaseError as exc:
        log.error(
            "tool.failed",
            tool=tool,
            dependency="database",
            error=type(exc).__name__,
            detail=str(exc),
        )
        raise ToolError(f"the database is unavailable{suffix}; try again later") from exc
    except ResourceClosedError as exc:
        log.warning("tool.failed", tool=tool, dependency="runtime", error=type(exc).__name__)
        raise ToolError(f"the server is shutting down{suffix}; try again") from exc
