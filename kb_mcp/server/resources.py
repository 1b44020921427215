"""Documents as MCP resources: `kb://documents/{id}`, readable and listable.

A client can attach a stored document to a conversation without a tool call:

- `resources/templates/list` names the template `kb://documents/{id}`;
- `resources/read` of `kb://documents/<uuid>` returns the document as markdown (its title
  as a heading, then its content); a malformed id or an unknown one is an invalid-params
  error saying so;
- each read has the request budget of a tool call and rides through a database restart
  the same way (`kb_mcp.server.budget`);
- `resources/list` pages through the documents of every namespace, newest first
  (`kb_list`'s order and cursor), 50 per page, each named by its title, its description
  naming its namespace (and tags); a page costs its 51 rows through the `(created_at, id)`
  index, however many documents are stored. A document of any namespace reads by its id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import ListResourcesResult, PaginatedRequestParams, Resource
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS

from kb_mcp.errors import (
    DatabaseError,
    DeadlineExceededError,
    ResourceClosedError,
    ToolInputError,
)
from kb_mcp.server.budget import bounded
from kb_mcp.server.context import AppContext
from kb_mcp.server.cursors import decode_cursor, encode_cursor
from kb_mcp.server.validation import MAX_LIMIT, parse_document_id

__all__ = ["DOCUMENT_URI", "late_answer", "read_within_budget", "register_document_resources"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

DOCUMENT_URI = "kb://documents/{id}"
_MIME = "text/markdown"


def late_answer(exc: DeadlineExceededError) -> str:
    """What a resource read past its budget says."""
    return f"no answer within the request's budget of {exc.budget_s:g} s; try again"


def _internal(message: str) -> Exception:
    return MCPError(code=INTERNAL_ERROR, message=message)


async def read_within_budget(
    app: AppContext,
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    error: Callable[[str], Exception] = ResourceError,
) -> T:
    """`call()` within the request budget (`bounded`); a late answer or a failing database
    is raised as `error(message)`, the detail going to the log only."""
    try:
        return await bounded(app, what, call)
    except DeadlineExceededError as exc:
        log.error("resource.timed_out", budget_s=exc.budget_s)
        raise error(late_answer(exc)) from exc
    except (DatabaseError, ResourceClosedError) as exc:
        log.error("resource.failed", error=type(exc).__name__, detail=str(exc))
        raise error("the database is unavailable; try again later") from exc


def _described(namespace: str, tags: list[str]) -> str:
    """A listed document's description: its namespace, then its tags."""
    return f"namespace {namespace}" + (f"; tags {', '.join(tags)}" if tags else "")


def register_document_resources(server: MCPServer[AppContext]) -> None:
    """Add the document template and a `resources/list` that lists stored documents."""

    @server.resource(
        DOCUMENT_URI,
        name="document",
        title="Knowledge-base document",
        description="A stored document: its title as a heading, then its full content.",
        mime_type=_MIME,
    )
    async def read_document(id: str, ctx: Context[AppContext, Any]) -> str:
        try:
            document_id = parse_document_id(id)
        except ToolInputError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        app = ctx.request_context.lifespan_context
        doc = await read_within_budget(
            app, "resources/read", lambda: app.documents.get_document(document_id)
        )
        if doc is None:
            raise ResourceNotFoundError(f"no document has id {document_id}")
        return f"# {doc.title}\n\n{doc.content}"

    async def list_documents(
        ctx: ServerRequestContext[AppContext, Any], params: PaginatedRequestParams
    ) -> ListResourcesResult:
        app = ctx.lifespan_context
        key = await read_within_budget(
            app,
            "resources/list",
            lambda: app.cursors.key(app.documents.cursor_key),
            error=_internal,
        )
        try:
            cursor = decode_cursor(params.cursor, key=key)
        except ToolInputError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
        documents, next_cursor = await read_within_budget(
            app,
            "resources/list",
            lambda: app.documents.list_every_namespace(limit=MAX_LIMIT, cursor=cursor),
            error=_internal,
        )
        return ListResourcesResult(
            resources=[
                Resource(
                    uri=f"kb://documents/{doc.id}",
                    name=doc.title,
                    description=_described(doc.namespace, doc.tags),
                    mime_type=_MIME,
                )
                for doc in documents
            ],
            next_cursor=encode_cursor(next_cursor, key=key) if next_cursor else None,
        )

    # MCPServer lists only static resources; documents are rows, so serve the request on
    # the low-level server (its public add_request_handler replaces the default handler).
    server._lowlevel_server.add_request_handler(
        "resources/list", PaginatedRequestParams, list_documents
    )
