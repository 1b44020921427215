"""What the knowledge-base tools return: the structured results of each MCP tool."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "AddResult",
    "DeleteResult",
    "DocumentResult",
    "DocumentSummary",
    "ListResult",
    "NearDuplicateResult",
    "SearchHit",
    "SearchResult",
    "UpdateResult",
]


class NearDuplicateResult(BaseModel):
    id: str
    title: str
    similarity: float = Field(description="Cosine similarity of the two documents, 1.0 identical.")


class AddResult(BaseModel):
    id: str = Field(description="The document's id (a UUID).")
    chunks: int = Field(description="How many passages the content was split into.")
    status: Literal["created", "updated", "unchanged", "duplicate"] = Field(
        default="created",
        description=(
            "created: a new document; with an external_id already stored, updated (replaced "
            "in place, same id) or unchanged (identical, nothing written); without an "
            "external_id, duplicate: a document with identical content (ignoring whitespace) "
            "was already stored, id is that document's and nothing new was stored."
        ),
    )
    near_duplicates: list[NearDuplicateResult] = Field(
        default_factory=list,
        description="With dedupe_threshold: stored documents at least that similar.",
    )
    ignored: list[str] = Field(
        default_factory=list,
        description=(
            "duplicate only: the fields given (title, tags, metadata) that differ from the "
            "stored document's and were NOT stored; the stored document is unchanged "
            "(use kb_update on id to change them)."
        ),
    )


class SearchHit(BaseModel):
    id: str = Field(description="Document id.")
    title: str
    snippet: str = Field(
        description=(
            "A window of the best passage around the matched words, each matched word "
            "between ** and ** (the markers are not in the document)."
        )
    )
    score: float = Field(
        description=(
            "0 to 1, comparable across queries. keyword: IDF-weighted share of the query's "
            "words the document holds (a word in the title or tags counts fully, in the "
            "body 3/4; 0.75 or more: every word). vector: cosine similarity of the best "
            "passage. hybrid: 0.7 x keyword score + 0.3 x cosine similarity."
        )
    )
    tags: list[str]
    external_id: str | None = Field(default=None, description="Your key, if it has one.")
    matched: list[str] = Field(description="The signals that found it: vector, keyword.")
    vector_score: float | None = Field(default=None, description="Cosine similarity.")
    keyword_score: float | None = Field(default=None, description="Keyword score, if matched.")
    start: int = Field(
        default=0, description="Offset of the snippet in the document's content (chars)."
    )
    end: int = Field(
        default=0, description="End of the snippet in the document's content (exclusive)."
    )
    highlights: list[list[int]] = Field(
        default_factory=list,
        description="[start, end] offsets of each matched word in the document's content.",
    )


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
    namespace: str = Field(default="default", description="The document's namespace.")
    external_id: str | None = Field(default=None, description="Your key, if it has one.")


class DocumentSummary(BaseModel):
    id: str
    title: str
    tags: list[str]
    created_at: str
    updated_at: str
    namespace: str = "default"
    external_id: str | None = None


class ListResult(BaseModel):
    documents: list[DocumentSummary] = Field(description="Newest first.")
    total: int = Field(description="How many documents match the filter in all.")
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null at the end."
    )


class UpdateResult(BaseModel):
    id: str
    changed: list[str] = Field(description="The fields that changed; empty when none did.")
    chunks: int = Field(description="How many passages the document has now.")
    embedded: int = Field(description="Passages embedded anew.")
    reused: int = Field(description="Unchanged passages whose stored embedding was kept.")
    updated_at: str = Field(description="ISO 8601 timestamp.")


class DeleteResult(BaseModel):
    deleted: bool = Field(description="False when no document had this id.")
