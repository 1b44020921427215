"""Checks on MCP tool arguments, with messages a model (or a person) can act on.

The JSON schema of each tool fixes the types and, through pydantic, the sizes (a list
longer than its limit is refused after reading limit + 1 items); these functions check
what a type cannot say: emptiness, ranges, identifiers, storable text. Each raises
`ToolInputError`.

Every check refuses by the limit before it looks at the items: the cost of refusing an
input never grows with the input (a 400k-tag list is refused by its length, a deep or
huge metadata object by a walk that stops at the limit).

Text must be storable as-is: PostgreSQL refuses NUL characters and unpaired surrogates,
so they are rejected here with a clear message rather than failing deep in the database.
Metadata integers must be exact in a double (|n| <= 2**53): PostgreSQL's jsonb keeps
numbers as decimals, and `kb_get` reads an integral number beyond that range back as the
float it was.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from kb_mcp.errors import ToolInputError

__all__ = [
    "MAX_CONTENT_CHARS",
    "MAX_EXTERNAL_ID_CHARS",
    "MAX_ID_CHARS",
    "MAX_LIMIT",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_QUERY_CHARS",
    "MAX_SAFE_INTEGER",
    "MAX_TAGS",
    "MAX_TAG_CHARS",
    "MAX_TITLE_CHARS",
    "check_content",
    "check_external_id",
    "check_limit",
    "check_metadata",
    "check_query",
    "check_tags",
    "check_title",
    "parse_document_id",
]

MAX_CONTENT_CHARS = 200_000
"""Longest document `kb_add` accepts, in characters (about 50k tokens; ~230 chunks)."""
MAX_TITLE_CHARS = 500
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_METADATA_BYTES = 16 * 1024
"""Largest metadata object, measured as compact UTF-8 JSON."""
MAX_METADATA_DEPTH = 16
"""Deepest nesting of objects and arrays inside metadata (the object itself is depth 1)."""
MAX_SAFE_INTEGER = 2**53
MAX_QUERY_CHARS = 4_000
MAX_LIMIT = 50
MAX_ID_CHARS = 64
"""Longer than any document id in any accepted spelling (36 characters and spaces)."""
MAX_EXTERNAL_ID_CHARS = 256

_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE
)


def _too_long(what: str, size: int, limit: int, unit: str = "characters") -> ToolInputError:
    return ToolInputError(f"{what} is {size} {unit}; the limit is {limit}")


def _storable(value: str, what: str) -> str:
    if "\x00" in value:
        raise ToolInputError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolInputError(f"{what} is not valid unicode (unpaired surrogate)") from None
    return value


def _text(value: object, what: str, limit: int) -> str:
    """A string of at most `limit` characters (checked first), storable."""
    if not isinstance(value, str):
        raise ToolInputError(f"{what} must be a string")
    if len(value) > limit:
        raise _too_long(what, len(value), limit)
    return _storable(value, what)


def check_title(title: str) -> str:
    """The title, stripped: 1 to 500 characters."""
    # Surrounding spaces do not count, but the unstripped length is bounded first.
    stripped = _text(title, "title", MAX_TITLE_CHARS * 2).strip()
    if not stripped:
        raise ToolInputError("title must not be empty")
    if len(stripped) > MAX_TITLE_CHARS:
        raise _too_long("title", len(stripped), MAX_TITLE_CHARS)
    return stripped


def check_content(content: str) -> str:
    """The content as given (not stripped): some non-space text, at most the limit."""
    if isinstance(content, str) and len(content) > MAX_CONTENT_CHARS:
        raise ToolInputError(
            f"content is {len(content)} characters; the limit is {MAX_CONTENT_CHARS} "
            "(split the document into several)"
        )
    _text(content, "content", MAX_CONTENT_CHARS)
    if not content.strip():
        raise ToolInputError("content must not be empty")
    return content


def check_external_id(value: str | None) -> str | None:
    """The caller's own key for a document (idempotent adds): 1-256 characters, or None."""
    if value is None:
        return None
    stripped = _text(value, "external_id", MAX_EXTERNAL_ID_CHARS).strip()
    if not stripped:
        raise ToolInputError("external_id must not be empty (omit it instead)")
    if len(stripped) > MAX_EXTERNAL_ID_CHARS:
        raise _too_long("external_id", len(stripped), MAX_EXTERNAL_ID_CHARS)
    return stripped


def check_tags(tags: Sequence[str] | None, *, what: str = "tags") -> list[str]:
    """Tags stripped and de-duplicated in order: at most 32, each 1 to 64 characters."""
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise ToolInputError(f"{what} must be a list of strings")
    if len(tags) > MAX_TAGS:
        raise ToolInputError(f"{what} has {len(tags)} entries; the limit is {MAX_TAGS}")
    cleaned: dict[str, None] = {}
    for index, tag in enumerate(tags):
        value = _text(tag, f"{what}[{index}]", MAX_TAG_CHARS * 2).strip()
        if not value:
            raise ToolInputError(f"{what}[{index}] must not be empty")
        if len(value) > MAX_TAG_CHARS:
            raise _too_long(f"{what}[{index}]", len(value), MAX_TAG_CHARS)
        cleaned.setdefault(value)
    return list(cleaned)


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A JSON object of at most 16 KB and 16 levels, storable, its integers exact."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ToolInputError("metadata must be a JSON object")
    _walk_metadata(metadata)
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolInputError("metadata must hold only JSON values (finite numbers)") from exc
    size = len(encoded.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise _too_long("metadata", size, MAX_METADATA_BYTES, "bytes as JSON")
    return dict(metadata)


def _walk_metadata(root: dict[str, Any]) -> None:
    """Check every value, stopping as soon as the size or depth budget is spent.

    `budget` counts a lower bound of the JSON size (one byte per value, the characters
    of every string and key), so the walk ends within MAX_METADATA_BYTES steps.
    """
    budget = MAX_METADATA_BYTES
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if isinstance(value, str):
            budget -= len(value)
            if budget >= 0:
                _storable(value, "metadata")
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) > MAX_SAFE_INTEGER:
                raise ToolInputError(
                    "metadata integers must be within +/-2**53 (store larger ones as strings)"
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ToolInputError("metadata must hold only JSON values (finite numbers)")
        elif isinstance(value, dict | list):
            if depth > MAX_METADATA_DEPTH:
                raise ToolInputError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
            budget -= len(value)
            if budget < 0:
                break
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise ToolInputError("metadata keys must be strings")
                    budget -= len(key)
                    if budget >= 0:
                        _storable(key, "metadata")
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        else:
            raise ToolInputError("metadata must hold only JSON values (finite numbers)")
        if budget < 0:
            break
    if budget < 0:
        raise ToolInputError(
            f"metadata is over the size limit: the limit is {MAX_METADATA_BYTES} bytes as JSON"
        )


def check_query(query: str) -> str:
    """A search query: some non-space text, at most 4,000 characters."""
    stripped = _text(query, "query", MAX_QUERY_CHARS * 2).strip()
    if not stripped:
        raise ToolInputError("query must not be empty")
    if len(stripped) > MAX_QUERY_CHARS:
        raise _too_long("query", len(stripped), MAX_QUERY_CHARS)
    return stripped


def check_limit(limit: int) -> int:
    """A page or result size: an integer (not a bool, float or string) from 1 to 50."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        shown = repr(limit) if isinstance(limit, bool | int) else type(limit).__name__
        raise ToolInputError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {shown}")
    return limit


def parse_document_id(value: str) -> UUID:
    """A document id: a UUID in its usual text form (ASCII hex, 8-4-4-4-12), any case."""
    bad = "id must be a document id (a UUID such as the one kb_add returned)"
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS:
        raise ToolInputError(bad)
    text = value.strip()
    if not _UUID.fullmatch(text):
        raise ToolInputError(bad)
    return UUID(text)


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
