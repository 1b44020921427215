"""Writing a document's fields and chunks: one implementation for kb_add, its upsert and kb_update.

- `embed_chunks(embedder, title, content, stored)` splits the content into chunks and
  gives each its vector. A chunk's embedding input is `title + "\\n\\n" + chunk text` (so a
  passage carries its document's subject); an input found in `stored` (input -> vector
  literal, from `stored_vectors`) reuses that vector, the others are embedded in one call
  (each distinct input once). It runs before any write transaction, so a failed embedding
  call changes nothing. A vector depends only on its input, so a reused one is right even
  when the document changed after it was read.
- `DocumentWriter` writes inside the caller's transaction: `insert` a new document with its
  chunks (`insert_many`: many, with ids chosen by the caller, in two pipelined statements),
  `replace` a document's fields and all its chunks (same id, `updated_at` moved), `retag`
  only tags and metadata (chunks untouched, nothing embedded).

`updated_at` is `clock_timestamp()`, not `now()`: two updates of one document in one
second of one long transaction still get distinct, ordered stamps.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from kb_mcp.db.port import AnyConnection, TextEmbedder
from kb_mcp.db.vectors import check_dimensions, vector_param, vector_sql
from kb_mcp.embeddings.chunking import split_into_chunks

__all__ = [
    "ChunkVectors",
    "DocumentFields",
    "DocumentWriter",
    "NewRow",
    "embed_chunks",
    "embedding_input",
    "load_metadata",
    "stored_vectors",
]

_SAFE_INTEGER = 2**53

# {v5}/{v4}: $5/$4, the vector as `real[]` cast to the embedding dimension
# (`kb_mcp.db.vectors.vector_sql`).
# The document and its first chunk in one statement, the vector ($5) sent once for both;
# $10-$12: a restored document's id and timestamps (NULL: new ones).
_INSERT_DOCUMENT_AND_FIRST_CHUNK = (
    "WITH d AS (INSERT INTO documents "
    "(id, title, content, tags, metadata, embedding, external_id, namespace, created_at,"
    " updated_at) "
    "VALUES (coalesce($10::uuid, gen_random_uuid()), $1, $2, $3, $4::jsonb, {v5}, $6, $9,"
    " coalesce($11::timestamptz, now()), coalesce($12::timestamptz, $11::timestamptz, now()))"
    " RETURNING id), "
    "c AS (INSERT INTO chunks (document_id, ordinal, content, embedding) "
    "SELECT d.id, $7, $8, {v5} FROM d) "
    "SELECT id FROM d"
)
_REPLACE_DOCUMENT = (
    "UPDATE documents SET title = $1, content = $2, tags = $3, metadata = $4::jsonb, "
    "embedding = {v5}, updated_at = clock_timestamp() "
    "WHERE id = $6 RETURNING updated_at"
)
_RETAG_DOCUMENT = (
    "UPDATE documents SET tags = $2, metadata = $3::jsonb, updated_at = clock_timestamp() "
    "WHERE id = $1 RETURNING updated_at"
)
_INSERT_CHUNK = (
    "INSERT INTO chunks (document_id, ordinal, content, embedding) VALUES ($1, $2, $3, {v4})"
)
_STORED_CHUNKS = "SELECT content, embedding::real[] AS embedding FROM chunks WHERE document_id = $1"


def embedding_input(title: str, text: str) -> str:
    """What is embedded for a chunk: its document's title, a blank line, its text."""
    return f"{title}\n\n{text}"


@dataclass(frozen=True, slots=True)
class ChunkVectors:
    """A content's chunks with their vectors, and how many were embedded or reused."""

    chunks: tuple[tuple[int, str, list[float]], ...]
    """(ordinal, text, vector) of every chunk, in order."""
    embedded: int
    reused: int

    def __len__(self) -> int:
        return len(self.chunks)


async def embed_chunks(
    embedder: TextEmbedder,
    title: str,
    content: str,
    stored: Mapping[str, list[float]] | None = None,
) -> ChunkVectors:
    """Every chunk of `content` with a vector, embedding only inputs not in `stored`."""
    pieces = split_into_chunks(content)
    if not pieces:
        raise ValueError("content has no text to store")
    known = stored or {}
    inputs = [embedding_input(title, piece.text) for piece in pieces]
    missing = list(dict.fromkeys(text for text in inputs if text not in known))
    fresh: dict[str, list[float]] = {}
    if missing:
        vectors = await embedder.embed(missing)
        fresh = {text: vector_param(v) for text, v in zip(missing, vectors, strict=True)}
    chunks = tuple(
        (piece.ordinal, piece.text, known.get(text) or fresh[text])
        for piece, text in zip(pieces, inputs, strict=True)
    )
    reused = sum(1 for text in inputs if text in known)
    return ChunkVectors(chunks, embedded=len(inputs) - reused, reused=reused)


async def stored_vectors(
    conn: AnyConnection, document_id: UUID, title: str
) -> dict[str, list[float]]:
    """The stored chunks of a document titled `title`: embedding input -> vector."""
    rows = await conn.fetch(_STORED_CHUNKS, document_id)
    return {embedding_input(title, row["content"]): list(row["embedding"]) for row in rows}


def load_metadata(text: str) -> dict[str, Any]:
    """Metadata as stored, with integral numbers beyond 2**53 back as the floats they were.

    jsonb prints `1e308` as a 309-digit integer; integers beyond 2**53 are refused on the
    way in, so such a number is read back as the float it was.
    """
    value: dict[str, Any] = json.loads(text, parse_int=_parse_int)
    return value


def _parse_int(text: str) -> int | float:
    number = int(text) if len(text) <= 20 else None
    if number is not None and abs(number) <= _SAFE_INTEGER:
        return number
    return float(text)


@dataclass(frozen=True, slots=True)
class DocumentFields:
    """A document's own fields, and whether a stored row already holds exactly these."""

    title: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]

    def row(self) -> tuple[str, str, list[str], str]:
        return self.title, self.content, self.tags, json.dumps(self.metadata)

    def same_as(self, row: Any) -> bool:
        """`row` has title, content, tags and metadata (as jsonb text) columns."""
        return (
            row["title"] == self.title
            and row["content"] == self.content
            and list(row["tags"]) == self.tags
            and load_metadata(row["metadata"]) == self.metadata
        )


@dataclass(frozen=True, slots=True)
class NewRow:
    """A new document for `DocumentWriter.insert_many`: its id chosen by the caller."""

    id: UUID
    fields: DocumentFields
    vectors: ChunkVectors
    namespace: str
    external_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class DocumentWriter:
    """The statements that write documents and chunks (inside the caller's transaction)."""

    @classmethod
    @functools.cache
    def for_dimensions(cls, dimensions: int) -> DocumentWriter:
        """The writer for `dimensions` (built once: the statements are formatted here)."""
        return cls(dimensions)

    def __init__(self, dimensions: int) -> None:
        n = check_dimensions(dimensions)
        fill = {"v5": vector_sql(n, "$5"), "v4": vector_sql(n, "$4")}
        self._insert_document = _INSERT_DOCUMENT_AND_FIRST_CHUNK.format_map(fill)
        self._replace_document = _REPLACE_DOCUMENT.format_map(fill)
        self._insert_chunk = _INSERT_CHUNK.format_map(fill)

    async def insert(
        self,
        conn: AnyConnection,
        fields: DocumentFields,
        vectors: ChunkVectors,
        external_id: str | None = None,
        namespace: str = "default",
        kept: tuple[UUID | None, datetime | None, datetime | None] = (None, None, None),
    ) -> UUID:
        """A new document and its chunks (in `namespace`); its id. `kept`: the id,
        created_at and updated_at it gets instead of new ones (a restored document)."""
        (ordinal, text, vector), *rest = vectors.chunks
        doc_id: UUID = await conn.fetchval(
            self._insert_document,
            *fields.row(),
            vector,
            external_id,
            ordinal,
            text,
            namespace,
            *kept,
        )
        if rest:
            await self._insert_chunks(conn, doc_id, rest)
        return doc_id

    async def insert_many(self, conn: AnyConnection, rows: Sequence[NewRow]) -> None:
        """New documents with the ids they name, and their chunks: two pipelined statements
        (`executemany`) for all of them, however many."""
        await conn.executemany(
            self._insert_document,
            [
                (
                    *row.fields.row(),
                    row.vectors.chunks[0][2],
                    row.external_id,
                    row.vectors.chunks[0][0],
                    row.vectors.chunks[0][1],
                    row.namespace,
                    row.id,
                    row.created_at,
                    row.updated_at,
                )
                for row in rows
            ],
        )
        rest = [(row.id, *chunk) for row in rows for chunk in row.vectors.chunks[1:]]
        if rest:
            await conn.executemany(self._insert_chunk, rest)

    async def replace(
        self, conn: AnyConnection, doc_id: UUID, fields: DocumentFields, vectors: ChunkVectors
    ) -> datetime:
        """Every field and chunk of the document replaced; its new `updated_at`."""
        stamp: datetime = await conn.fetchval(
            self._replace_document, *fields.row(), vectors.chunks[0][2], doc_id
        )
        await conn.execute("DELETE FROM chunks WHERE document_id = $1", doc_id)
        await self._insert_chunks(conn, doc_id, vectors.chunks)
        return stamp

    async def retag(
        self, conn: AnyConnection, doc_id: UUID, tags: Sequence[str], metadata: dict[str, Any]
    ) -> datetime:
        """Only tags and metadata replaced (chunks stay); the new `updated_at`."""
        stamp: datetime = await conn.fetchval(
            _RETAG_DOCUMENT, doc_id, list(tags), json.dumps(metadata)
        )
        return stamp

    async def _insert_chunks(
        self, conn: AnyConnection, doc_id: UUID, chunks: Sequence[tuple[int, str, list[float]]]
    ) -> None:
        await conn.executemany(
            self._insert_chunk,
            [(doc_id, ordinal, text, vector) for ordinal, text, vector in chunks],
        )
