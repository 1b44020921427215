"""Creating many new documents in one transaction: the bulk path's fast write.

`add_many` (`kb_mcp.db.bulk`) hands over the items it found to be new: keyed ones whose
key no stored document has, and unkeyed ones restoring an id (no content dedupe). One
transaction then writes them all, in a few statements whatever their number:

1. the advisory locks of every key (the same lock a single add takes, `kb_mcp.db.adding`),
   in one statement, in hash order (two groups sharing keys cannot deadlock);
2. under them, the keys stored since they were looked up (a concurrent add): those items
   leave the group and are given back to the caller, to be added one by one;
3. every document and its first chunk (`DocumentWriter.insert_many`, pipelined), its id
   chosen here (`uuid4`, as `gen_random_uuid()` would) or the one it restores.

The answer is as true as a single add's (`kb_mcp.db.outcome`): the commit stores every
document of the group or none; a group that fails before its commit is given back whole
to be added one by one (so one bad item fails alone, with its own error); a connection
lost during the commit is `DatabaseOutcomeUnknownError` for each of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from kb_mcp.db.adding import EXTERNAL_ID_LOCK
from kb_mcp.db.models import AddedDocument
from kb_mcp.db.outcome import committed
from kb_mcp.db.port import AnyConnection, ConnectionSource
from kb_mcp.db.rewrite import DocumentWriter, NewRow
from kb_mcp.errors import DatabaseError, DatabaseOutcomeUnknownError, ResourceClosedError

__all__ = ["GroupItem", "add_group", "new_id"]

log = structlog.get_logger(__name__)

_LOCK_KEYS = (
    "SELECT pg_advisory_xact_lock(h) FROM ("
    " SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h"
    ") AS locks"
)
_STORED_KEYS = (
    "SELECT d.namespace, d.external_id FROM documents d"
    " JOIN unnest($1::text[], $2::text[]) AS k(namespace, external_id)"
    " ON d.namespace = k.namespace AND d.external_id = k.external_id"
)


@dataclass(frozen=True, slots=True)
class GroupItem:
    """One new document of a group, and where its answer goes (the caller's index)."""

    index: int
    row: NewRow


def new_id() -> uuid.UUID:
    """A new document id (version 4, as the table's default)."""
    return uuid.uuid4()


async def add_group(
    source: ConnectionSource, writer: DocumentWriter, items: Sequence[GroupItem]
) -> tuple[dict[int, AddedDocument], list[GroupItem]]:
    """Create `items` in one transaction: the answers by index, and the items given back
    (their key stored meanwhile, or the group failed before its commit)."""
    if not items:
        return {}, []

    async def write(conn: AnyConnection) -> list[GroupItem]:
        keyed = [i for i in items if i.row.external_id is not None]
        if keyed:
            await conn.execute(
                _LOCK_KEYS,
                [f"{EXTERNAL_ID_LOCK}{i.row.namespace}:{i.row.external_id}" for i in keyed],
            )
            rows = await conn.fetch(
                _STORED_KEYS,
                [i.row.namespace for i in keyed],
                [i.row.external_id for i in keyed],
            )
            taken = {(r["namespace"], r["external_id"]) for r in rows}
        else:
            taken = set()
        fresh = [i for i in items if (i.row.namespace, i.row.external_id) not in taken]
        if fresh:
            await writer.insert_many(conn, [i.row for i in fresh])
        return fresh

    try:
        written = await committed(source, "add", write)
    except DatabaseOutcomeUnknownError:
        raise
    except (DatabaseError, ResourceClosedError) as exc:
        # Nothing was stored: given back whole, each item then succeeds or fails alone.
        log.info("kb.group_add_fell_back", documents=len(items), error=type(exc).__name__)
        return {}, list(items)
    done = {i.index for i in written}
    answers = {
        i.index: AddedDocument(
            i.row.id, len(i.row.vectors), "created", embedded=i.row.vectors.embedded
        )
        for i in written
    }
    for i in written:
        log.info(
            "kb.document_added",
            document_id=str(i.row.id),
            chunks=len(i.row.vectors),
            status="created",
            embedded=i.row.vectors.embedded,
            reused=0,
        )
    return answers, [i for i in items if i.index not in done]
