"""Rows as an earlier release wrote them: documents stored through an older schema.

A migration test applies the migrations before the one under test, writes documents with
the statements of that release (fixed SQL here, not today's writer, which knows columns
the old schema lacks), then applies the rest and checks the upgraded data.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from kb_mcp.db.port import AnyConnection
from kb_mcp.db.rewrite import embedding_input
from kb_mcp.embeddings.embedder import Embedder

__all__ = ["insert_legacy_document"]


async def insert_legacy_document(
    conn: AnyConnection,
    embedder: Embedder,
    *,
    title: str,
    content: str,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    external_id: str | None = None,
) -> UUID:
    """A one-chunk document as releases before migration 0008 stored it; its id.

    The vector goes in as `real[]` cast to `vector`, so a connection opened before the
    extension existed (no `vector` codec) can write it.
    """
    vector = await embedder.embed_one(embedding_input(title, content))
    columns = "title, content, tags, metadata, embedding"
    values = "$1, $2, $3, $4::jsonb, $5::real[]::vector"
    args: list[object] = [title, content, tags or [], json.dumps(metadata or {}), vector]
    if external_id is not None:
        columns += ", external_id"
        values += ", $6"
        args.append(external_id)
    doc_id: UUID = await conn.fetchval(
        f"INSERT INTO documents ({columns}) VALUES ({values}) RETURNING id",  # noqa: S608 (fixed)
        *args,
    )
    await conn.execute(
        "INSERT INTO chunks (document_id, ordinal, content, embedding) "
        "VALUES ($1, 0, $2, $3::real[]::vector)",
        doc_id,
        content,
        vector,
    )
    return doc_id
