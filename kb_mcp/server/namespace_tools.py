"""The collection-level tools: kb_namespaces, kb_delete_namespace, kb_add_many.

- kb_namespaces: every namespace holding documents, with its document count.
- kb_delete_namespace: deletes every document of a namespace, only when `confirm` repeats
  the namespace's name (a model cannot wipe one by a slip of an argument).
- kb_add_many: up to `MAX_BATCH` documents in one call, each added as kb_add adds it
  (external_id upserts, content dedupe), `MAX_BATCH_CONCURRENCY` at a time; one result per
  item, in order: a failed item (bad argument, a dependency failing) says why and does not
  stop the others.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from kb_mcp.db.namespaces import NamespaceStore
from kb_mcp.errors import ToolInputError
from kb_mcp.server.arguments import _Content, _ExternalId, _Metadata, _Tags, _Title
from kb_mcp.server.context import AppContext
from kb_mcp.server.filter_args import Namespace, check_namespace
from kb_mcp.server.lookups import ignored_fields
from kb_mcp.server.tools import _ADD_UNKNOWN, ToolContext, _app, _reported
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
    with _reported("kb_namespaces"):
        counts = await NamespaceStore(_app(ctx).db).counts()
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
    with _reported("kb_delete_namespace", failure="nothing was deleted"):
        name = check_namespace(namespace) or ""
        if confirm != name:
            raise ToolInputError(
                f"confirm must be the namespace's name ({name!r}) to delete it; nothing deleted"
            )
        deleted = await NamespaceStore(_app(ctx).db).delete(name)
    return DeleteNamespaceResult(namespace=name, deleted=deleted)


async def _add_one(app: AppContext, index: int, doc: BatchDocument, space: str) -> BatchItemResult:
    try:
        with _reported("kb_add_many", failure="nothing was stored", unknown=_ADD_UNKNOWN):
            content = check_content(doc.content)
            title, tags = check_title(doc.title), check_tags(doc.tags)
            metadata = check_metadata(doc.metadata)
            key = check_external_id(doc.external_id)
            added = await app.documents.add_document(
                title=title,
                content=content,
                tags=tags,
                metadata=metadata,
                external_id=key,
                dedupe=True,
                namespace=space,
            )
    except ToolError as exc:
        return BatchItemResult(index=index, status="failed", error=str(exc))
    return BatchItemResult(
        index=index,
        status=added.status,
        id=str(added.id),
        chunks=added.chunks,
        ignored=ignored_fields(added.stored, title, tags, metadata) if added.stored else [],
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
    with _reported("kb_add_many", failure="nothing was stored"):
        if not documents:
            raise ToolInputError("documents must hold 1 to 100 documents")
        if len(documents) > MAX_BATCH:
            raise ToolInputError(f"documents has {len(documents)} items; the limit is {MAX_BATCH}")
        space = check_namespace(namespace) or "default"
    app = _app(ctx)
    gate = asyncio.Semaphore(MAX_BATCH_CONCURRENCY)

    async def gated(index: int, doc: BatchDocument) -> BatchItemResult:
        async with gate:
            return await _add_one(app, index, doc, space)

    results = list(await asyncio.gather(*(gated(i, d) for i, d in enumerate(documents))))
    return AddManyResult(
        results=results,
        stored=sum(1 for r in results if r.status in {"created", "updated"}),
        failed=sum(1 for r in results if r.status == "failed"),
    )


def register_namespace_tools(server: MCPServer[Any]) -> None:
    """Add kb_namespaces, kb_delete_namespace and kb_add_many to `server`."""
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(kb_namespaces, name="kb_namespaces", annotations=read_only)
    server.add_tool(
        kb_add_many, name="kb_add_many", annotations=ToolAnnotations(open_world_hint=False)
    )
    server.add_tool(
        kb_delete_namespace,
        name="kb_delete_namespace",
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False),
    )
