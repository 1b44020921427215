"""The writing tools: kb_add, kb_update and kb_delete.

Each runs inside `reporting.reported` (our errors become MCP tool errors) and within the
request budget (`kb_mcp.server.budget`); a write past its budget says how far it got
(`outcome_so_far`). `kb_mcp.server.tools` registers them.
"""

from __future__ import annotations

import dataclasses

from kb_mcp.db.dedupe import NearDuplicate
from kb_mcp.db.models import AddedDocument
from kb_mcp.errors import (
    ToolInputError,
)
from kb_mcp.server.arguments import (
    _Content,
    _DedupeThreshold,
    _ExternalId,
    _KeyNamespace,
    _Metadata,
    _NewContent,
    _NewMetadata,
    _NewTags,
    _NewTitle,
    _OptionalId,
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
from kb_mcp.server.filter_args import (
    Namespace,
    check_namespace,
)
from kb_mcp.server.lookups import ignored_fields
from kb_mcp.server.lookups import lookup as _lookup
from kb_mcp.server.reporting import ADD_UNKNOWN, NEAR_UNCHECKED, UPDATE_UNKNOWN, reported
from kb_mcp.server.results import (
    AddResult,
    DeleteResult,
    NearDuplicateResult,
    UpdateResult,
)
from kb_mcp.server.tool_context import ToolContext, app_of
from kb_mcp.server.validation import (
    check_content,
    check_dedupe_threshold,
    check_external_id,
    check_metadata,
    check_tags,
    check_title,
    check_update,
)

__all__ = ["kb_add", "kb_delete", "kb_update"]


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
    app = app_of(ctx)
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
    app = app_of(ctx)
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
    app = app_of(ctx)
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
