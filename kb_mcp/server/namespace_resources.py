"""Namespaces as MCP resources: their list with counts, and a filtered listing of one.

- `kb://namespaces{?prefix}`: every namespace holding documents (whose name starts with
  `prefix`, when given), with its document count (JSON). A template, not a static
  resource: the SDK gives a static resource no request context to read the database.
- `kb://namespaces/{namespace}/documents{?tags,tags_any,metadata,created_after,
  created_before,updated_after,updated_before}`: the newest 50 documents of a namespace
  passing the filters of kb_list (JSON: id, uri, title, tags, external_id, timestamps).
  `tags` and `tags_any` are comma-separated; `metadata` is a JSON object whose pairs must
  each be equal (`{"team":"ops"}`, URL-encoded); dates are ISO 8601.

A bad argument is a resource-not-found error saying what is wrong; a failing database
is a resource error, as for documents (`kb_mcp.server.resources`).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from kb_mcp.db.namespaces import NamespaceStore
from kb_mcp.errors import (
    ToolInputError,
)
from kb_mcp.server.context import AppContext
from kb_mcp.server.filter_args import MetadataFilterArg, document_filter
from kb_mcp.server.resources import read_within_budget
from kb_mcp.server.validation import MAX_LIMIT

__all__ = ["NAMESPACES_URI", "NAMESPACE_DOCUMENTS_URI", "register_namespace_resources"]

log = structlog.get_logger(__name__)

NAMESPACES_URI = "kb://namespaces{?prefix}"
NAMESPACE_DOCUMENTS_URI = (
    "kb://namespaces/{namespace}/documents"
    "{?tags,tags_any,metadata,created_after,created_before,updated_after,updated_before}"
)
_MAX_METADATA_PARAM = 4096


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [part for part in value.split(",") if part.strip()]


def _metadata(value: str | None) -> list[MetadataFilterArg] | None:
    if value is None:
        return None
    if len(value) > _MAX_METADATA_PARAM:
        raise ToolInputError(f"metadata is over {_MAX_METADATA_PARAM} characters")
    try:
        pairs = json.loads(value)
    except ValueError:
        raise ToolInputError("metadata must be a JSON object") from None
    if not isinstance(pairs, dict):
        raise ToolInputError("metadata must be a JSON object")
    return [MetadataFilterArg(key=k, op="eq", value=v) for k, v in pairs.items()]


def register_namespace_resources(server: MCPServer[AppContext]) -> None:
    """Add `kb://namespaces` and the filtered listing template."""

    @server.resource(
        NAMESPACES_URI,
        name="namespaces",
        title="Knowledge-base namespaces",
        description="Every namespace holding documents, with its document count.",
        mime_type="application/json",
    )
    async def namespaces(ctx: Context[AppContext, Any], prefix: str | None = None) -> str:
        app = ctx.request_context.lifespan_context
        counts = await read_within_budget(app, "resources/read", NamespaceStore(app.db).counts)
        return json.dumps(
            [
                {"namespace": c.name, "documents": c.documents}
                for c in counts
                if prefix is None or c.name.startswith(prefix)
            ]
        )

    @server.resource(
        NAMESPACE_DOCUMENTS_URI,
        name="namespace-documents",
        title="Documents of a namespace",
        description=(
            "The newest 50 documents of a namespace passing kb_list's filters: tags and "
            "tags_any comma-separated, metadata a JSON object of equal pairs, ISO dates."
        ),
        mime_type="application/json",
    )
    async def namespace_documents(
        namespace: str,
        ctx: Context[AppContext, Any],
        tags: str | None = None,
        tags_any: str | None = None,
        metadata: str | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        updated_after: str | None = None,
        updated_before: str | None = None,
    ) -> str:
        try:
            where = document_filter(
                namespace=namespace,
                tags=_split(tags),
                tags_any=_split(tags_any),
                metadata_filter=_metadata(metadata),
                created_after=created_after,
                created_before=created_before,
                updated_after=updated_after,
                updated_before=updated_before,
            )
        except (ToolInputError, ValueError) as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        app = ctx.request_context.lifespan_context
        page = await read_within_budget(
            app,
            "resources/read",
            lambda: app.documents.list_documents(limit=MAX_LIMIT, where=where),
        )
        return json.dumps(
            {
                "total": page.total,
                "documents": [
                    {
                        "id": str(d.id),
                        "uri": f"kb://documents/{d.id}",
                        "title": d.title,
                        "tags": d.tags,
                        "external_id": d.external_id,
                        "created_at": d.created_at.isoformat(),
                        "updated_at": d.updated_at.isoformat(),
                    }
                    for d in page.documents
                ],
            }
        )
