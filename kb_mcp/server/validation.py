"""Checks on MCP tool arguments, with messages a model (or a person) can act on.

The JSON schema of each tool already fixes the types (pydantic rejects a tag that is not a
string, metadata that is not an object); these functions check what a type cannot say:
sizes, ranges, emptiness, identifiers and cursors. Each raises `ToolInputError`.

Text must be storable as-is: PostgreSQL refuses NUL characters and unpaired surrogates,
so they are rejected here with a clear message rather than failing deep in the database.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from kb_mcp.db.documents import PageCursor
from kb_mcp.errors import ToolInputError

__all__ = [
    "MAX_CONTENT_CHARS",
    "MAX_LIMIT",
    "MAX_METADATA_BYTES",
    "MAX_QUERY_CHARS",
    "MAX_TAGS",
    "MAX_TAG_CHARS",
    "MAX_TITLE_CHARS",
    "check_content",
    "check_limit",
    "check_metadata",
    "check_query",
    "check_tags",
    "check_title",
    "decode_cursor",
    "encode_cursor",
    "parse_document_id",
]

MAX_CONTENT_CHARS = 200_000
"""Longest document `kb_add` accepts, in characters (about 50k tokens; ~230 chunks)."""
MAX_TITLE_CHARS = 500
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_METADATA_BYTES = 16 * 1024
"""Largest metadata object, measured as compact UTF-8 JSON."""
MAX_QUERY_CHARS = 4_000
MAX_LIMIT = 50


def _storable(value: str, what: str) -> str:
    if "\x00" in value:
        raise ToolInputError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolInputError(f"{what} is not valid unicode (unpaired surrogate)") from None
    return value


def check_title(title: str) -> str:
    """The title, stripped: 1 to 500 characters."""
    stripped = _storable(title, "title").strip()
    if not stripped:
        raise ToolInputError("title must not be empty")
    if len(stripped) > MAX_TITLE_CHARS:
        raise ToolInputError(f"title is {len(stripped)} characters; the limit is {MAX_TITLE_CHARS}")
    return stripped


def check_content(content: str) -> str:
    """The content as given (not stripped): some non-space text, at most the limit."""
    _storable(content, "content")
    if not content.strip():
        raise ToolInputError("content must not be empty")
    if len(content) > MAX_CONTENT_CHARS:
        raise ToolInputError(
            f"content is {len(content)} characters; the limit is {MAX_CONTENT_CHARS} "
            "(split the document into several)"
        )
    return content


def check_tags(tags: Sequence[str] | None, *, what: str = "tags") -> list[str]:
    """Tags stripped and de-duplicated in order: at most 32, each 1 to 64 characters."""
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise ToolInputError(f"{what} must be a list of strings")
    cleaned: list[str] = []
    for index, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise ToolInputError(f"{what}[{index}] must be a string")
        value = _storable(tag, f"{what}[{index}]").strip()
        if not value:
            raise ToolInputError(f"{what}[{index}] must not be empty")
        if len(value) > MAX_TAG_CHARS:
            raise ToolInputError(
                f"{what}[{index}] is {len(value)} characters; the limit is {MAX_TAG_CHARS}"
            )
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_TAGS:
        raise ToolInputError(f"{what} has {len(cleaned)} entries; the limit is {MAX_TAGS}")
    return cleaned


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A JSON object of at most 16 KB, without NUL characters."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ToolInputError("metadata must be a JSON object")
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolInputError("metadata must hold only JSON values (finite numbers)") from exc
    _check_strings(metadata)
    size = len(encoded.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ToolInputError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return dict(metadata)


def _check_strings(value: Any) -> None:
    """Every key and string inside a JSON value must be storable."""
    if isinstance(value, str):
        _storable(value, "metadata")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(str(key), "metadata")
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def check_query(query: str) -> str:
    """A search query: some non-space text, at most 4,000 characters."""
    stripped = _storable(query, "query").strip()
    if not stripped:
        raise ToolInputError("query must not be empty")
    if len(stripped) > MAX_QUERY_CHARS:
        raise ToolInputError(f"query is {len(stripped)} characters; the limit is {MAX_QUERY_CHARS}")
    return stripped


def check_limit(limit: int) -> int:
    """A page or result size between 1 and 50."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ToolInputError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def parse_document_id(value: str) -> UUID:
    """A document id: a UUID in its usual text form."""
    try:
        return UUID(str(value).strip())
    except ValueError:
        raise ToolInputError(
            "id must be a document id (a UUID such as the one kb_add returned)"
        ) from None


def encode_cursor(cursor: PageCursor) -> str:
    """An opaque cursor string for `kb_list`'s next page."""
    raw = f"{cursor.created_at.isoformat()}|{cursor.id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(value: str | None) -> PageCursor | None:
    """The position a cursor string names, or None for the first page."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
        created, _, ident = raw.partition("|")
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return PageCursor(created_at=created_at, id=UUID(ident))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ToolInputError("cursor is not one kb_list returned") from None


# -- hybrid search, kb_update, duplicates (issue 14) ----------------------------------

SEARCH_MODES = ("hybrid", "vector", "keyword")
"""kb_search's ranking modes (kb_mcp.db.search.SEARCH_MODES)."""


def check_mode(mode: str) -> str:
    """A search mode: hybrid, vector or keyword."""
    if not isinstance(mode, str) or mode.strip().lower() not in SEARCH_MODES:
        raise ToolInputError(f"mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
    return mode.strip().lower()


def check_dedupe_threshold(threshold: float | None) -> float | None:
    """A similarity threshold above 0 and at most 1, or None (no near-duplicate check)."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ToolInputError(f"dedupe_threshold must be a number, got {threshold!r}")
    value = float(threshold)
    if not 0.0 < value <= 1.0:
        raise ToolInputError(
            "dedupe_threshold must be above 0 and at most 1 (a cosine similarity), "
            f"got {threshold!r}"
        )
    return value


def check_update(
    title: str | None, content: str | None, tags: Sequence[str] | None, metadata: Any
) -> tuple[str | None, str | None, list[str] | None, dict[str, Any] | None]:
    """kb_update's fields, each checked as kb_add checks it; at least one must be given."""
    if title is None and content is None and tags is None and metadata is None:
        raise ToolInputError("give at least one of title, content, tags or metadata to change")
    return (
        None if title is None else check_title(title),
        None if content is None else check_content(content),
        None if tags is None else check_tags(tags),
        None if metadata is None else check_metadata(metadata),
    )
