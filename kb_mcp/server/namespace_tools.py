"""The collection-level tools: kb_namespaces, kb_delete_namespace, kb_add_many.

- kb_namespaces: every namespace holding documents, with its document count.
- kb_delete_namespace: deletes every document of a namespace, only when `confirm` repeats
  the namespace's name (a model cannot wipe one by a slip of an argument).
- kb_add_many: up to `MAX_BATCH` documents in one call, each added as kb_add adds it
  (external_id upserts, content dedupe) through `kb_mcp.db.bulk.add_many` (one embeddings
  pass for the batch, `MAX_BATCH_CONCURRENCY` writes at a time); one result per item, in
  order: a failed item (bad argument, a dependency failing) says why and does not stop the
  others.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from kb_mcp.db.bulk import NewDocument, add_many
from kb_mcp.db.namespaces import NamespaceStore
from kb_mcp.errors import ToolInputError
from kb_mcp.server.arguments import _Content, _ExternalId, _Metadata, _Tags, _Title
from kb_mcp.server.budget import bounded
from kb_mcp.server.context import AppContext
from kb_mcp.server.filter_args import Namespace, check_namespace
from kb_mcp.server.lookups import ignored_fields
from kb_mcp.server.namespace_resources import register_namespace_resources
from kb_mcp.server.reporting import ADD_UNKNOWN, reported
from kb_mcp.server.tool_context import ToolContext, app_of
from kb_mcp.server.validation import (
    check_content,
    check_external_id,
    check_metadata,
    check_tags,
    check_title,
)

__all__ = ["MAX_BATCH", "register_namespace_tools"]

MAX_BATCH = 100
MAX_BATCH_CONCURRENCY = 8


class NamespaceCountResult(BaseModel):
    namespace: str
    documents: int


class NamespacesResult(BaseModel):
    namespaces: list[NamespaceCountResult] = Field(description="By name; only non-empty ones.")


class DeleteNamespaceResult(BaseModel):
    namespace: str
    deleted: int = Field(description="How many documents were deleted.")


class BatchDocument(BaseModel):
    """One document of kb_add_many, with kb_add's fields and limits."""

    model_config = ConfigDict(extra="forbid")

    title: _Title
    content: _Content
    tags: _Tags
    metadata: _Metadata
    external_id: _ExternalId = None


class BatchItemResult(BaseModel):
    index: int = Field(description="The item's position in `documents`, from 0.")
    status: str = Field(
        description="created, updated, unchanged, duplicate (as kb_add), or failed."
    )
    id: str | None = None
    chunks: int | None = None
    ignored: list[str] = Field(default_factory=list, description="As kb_add's.")
    error: str | None = Field(default=None, description="failed only: why.")


class AddManyResult(BaseModel):
    results: list[BatchItemResult] = Field(description="One per document, in order.")
    stored: int = Field(description="Items created or updated.")
    failed: int


async def kb_namespaces(ctx: ToolContext) -> NamespacesResult:
    """The namespaces (collections) holding documents, each with its document count."""
    app = app_of(ctx)
    with reported("kb_namespaces"):
        counts = await bounded(app, "kb_namespaces", NamespaceStore(app.db).counts)
    return NamespacesResult(
        namespaces=[NamespaceCountResult(namespace=c.name, documents=c.documents) for c in counts]
    )


async def kb_delete_namespace(
    ctx: ToolContext,
    namespace: Annotated[str, Field(strict=True, max_length=64, description="The namespace.")],
    confirm: Annotated[
        str,
        Field(
            strict=True,
            max_length=64,
            description="The namespace's name again: deleting a namespace cannot be undone.",
        ),
    ],
) -> DeleteNamespaceResult:
    """Delete a namespace: every document in it, permanently. `confirm` must repeat its name."""
    app = app_of(ctx)
    with reported("kb_delete_namespace", failure="nothing was deleted"):
        name = check_namespace(namespace) or ""
        if confirm != name:
            raise ToolInputError(
                f"confirm must be the namespace's name ({name!r}) to delete it; nothing deleted"
            )
        # Not retried: a DELETE cut off may have run, and a second one would count nothing.
        deleted = await bounded(
            app, "kb_delete_namespace", lambda: NamespaceStore(app.db).delete(name), retry_on=()
        )
    return DeleteNamespaceResult(namespace=name, deleted=deleted)


def _message(exc: Exception) -> str:
    """What kb_add would say for `exc` (the same translation, `reporting.reported`)."""
    try:
        with reported("kb_add_many", failure="nothing was stored", unknown=ADD_UNKNOWN):
            raise exc
    except ToolError as error:
        return str(error)


def _checked(doc: BatchDocument, space: str) -> NewDocument:
    return NewDocument(
        title=check_title(doc.title),
        content=check_content(doc.content),
        tags=check_tags(doc.tags),
        metadata=check_metadata(doc.metadata),
        external_id=check_external_id(doc.external_id),
        namespace=space,
    )


async def _add_all(app: AppContext, documents: list[BatchDocument], space: str) -> AddManyResult:
    results: list[BatchItemResult | None] = [None] * len(documents)
    valid: list[tuple[int, NewDocument]] = []
    for index, given in enumerate(documents):
        try:
            valid.append((index, _checked(given, space)))
        except ToolInputError as exc:
            results[index] = BatchItemResult(index=index, status="failed", error=_message(exc))
    added = await add_many(
        app.db,
        app.embedder,
        [doc for _, doc in valid],
        concurrency=MAX_BATCH_CONCURRENCY,
    )
    for (index, doc), outcome in zip(valid, added, strict=True):
        if isinstance(outcome, Exception):
            results[index] = BatchItemResult(index=index, status="failed", error=_message(outcome))
            continue
        kept = outcome.stored
        results[index] = BatchItemResult(
            index=index,
            status=outcome.status,
            id=str(outcome.id),
            chunks=outcome.chunks,
            ignored=ignored_fields(kept, doc.title, doc.tags, doc.metadata) if kept else [],
        )
    done = [r for r in results if r is not None]
    return AddManyResult(
        results=done,
        stored=sum(1 for r in done if r.status in {"created", "updated"}),
        failed=sum(1 for r in done if r.status == "failed"),
    )


async def kb_add_many(
    ctx: ToolContext,
    documents: Annotated[
        list[BatchDocument],
        Field(
            max_length=MAX_BATCH,
            description=f"1-{MAX_BATCH} documents, each as kb_add takes one.",
        ),
    ],
    namespace: Namespace = "default",
) -> AddManyResult:
    """Store up to 100 documents in one call; a result per document, in order (an item
    that fails says why and does not stop the others). Same rules as kb_add."""
    with reported("kb_add_many", failure="nothing was stored"):
        if not documents:
            raise ToolInputError("documents must hold 1 to 100 documents")
        if len(documents) > MAX_BATCH:
            raise ToolInputError(f"documents has {len(documents)} items; the limit is {MAX_BATCH}")
        space = check_namespace(namespace) or "default"
        app = app_of(ctx)
        # One budget for the batch; items are not retried as a whole (each has its result).
        return await bounded(
            app, "kb_add_many", lambda: _add_all(app, documents, space), retry_on=()
        )


def register_namespace_tools(server: MCPServer[AppContext]) -> None:
    """Add kb_namespaces, kb_delete_namespace and kb_add_many to `server` (and the
    namespace resources, `kb_mcp.server.namespace_resources`)."""
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(kb_namespaces, name="kb_namespaces", annotations=read_only)
    register_namespace_resources(server)
    server.add_tool(
        kb_add_many, name="kb_add_many", annotations=ToolAnnotations(open_world_hint=False)
    )
    server.add_tool(
        kb_delete_namespace,
        name="kb_delete_namespace",
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False),
    )
