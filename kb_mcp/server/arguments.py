"""The knowledge-base tools' argument types: strict, each with its limit, as pydantic reads them.

Every list and string carries its limit (`max_length`), so the SDK's pydantic parse refuses
an oversized argument after limit + 1 items instead of validating them all; the
validators in `kb_mcp.server.validation` then check what a type cannot say.

One set of limits: the JSON schema a client sees says the limits of
`kb_mcp.server.validation` (`maxLength`, `maxItems`), and so do the messages
(`kb_mcp.server.strict_tools` reads them from the schema). A text that is stripped before
it is checked (title, tags, external_id, query) is bounded by pydantic at twice its limit,
so surrounding spaces never make a valid value fail; content is not stripped, so its
bound is the limit itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from kb_mcp.db.search import SearchMode
from kb_mcp.server.validation import (
    MAX_CONTENT_CHARS,
    MAX_EXTERNAL_ID_CHARS,
    MAX_ID_CHARS,
    MAX_METADATA_BYTES,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
)

_Title = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_TITLE_CHARS * 2,
        description=f"Document title, 1-{MAX_TITLE_CHARS} characters.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_TITLE_CHARS},
    ),
]
_Content = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_CONTENT_CHARS,
        json_schema_extra={"minLength": 1, "maxLength": MAX_CONTENT_CHARS},
        description=(
            f"The document's full text, at most {MAX_CONTENT_CHARS} characters. Long text is "
            "split into passages, each embedded, so search finds the right passage."
        ),
    ),
]
_Tag = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_TAG_CHARS * 2,
        json_schema_extra={"minLength": 1, "maxLength": MAX_TAG_CHARS},
    ),
]
_Tags = Annotated[
    list[_Tag],
    Field(
        strict=True,
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"Up to {MAX_TAGS} tags, each 1-{MAX_TAG_CHARS} characters.",
    ),
]
_Metadata = Annotated[
    dict[str, Any],
    Field(
        strict=True,
        default_factory=dict,
        max_length=MAX_METADATA_BYTES // 2,
        description=f"Any JSON object, at most {MAX_METADATA_BYTES} bytes serialized.",
    ),
]
_TagFilter = Annotated[
    list[_Tag] | None,
    Field(
        strict=True,
        max_length=MAX_TAGS,
        description=(
            f"Only documents having every one of these tags (at most {MAX_TAGS}, "
            f"each 1-{MAX_TAG_CHARS} characters)."
        ),
    ),
]
_Id = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_ID_CHARS,
        description="Document id, as kb_add or kb_search returned it.",
    ),
]
_ExternalIdText = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_EXTERNAL_ID_CHARS * 2,
        json_schema_extra={"minLength": 1, "maxLength": MAX_EXTERNAL_ID_CHARS},
    ),
]
_ExternalId = Annotated[
    _ExternalIdText | None,
    Field(
        description=(
            "Your own key for this document, unique in its namespace "
            f"(1-{MAX_EXTERNAL_ID_CHARS} characters). Adding again with the same key "
            "updates the document instead of storing a copy, so a retry is always safe."
        ),
    ),
]
_Mode = Annotated[
    SearchMode,
    Field(description="hybrid (full text + semantic, fused), vector (semantic) or keyword."),
]
_DedupeThreshold = Annotated[
    float | None,
    Field(
        strict=True,
        description=(
            "Also report stored documents at least this similar (0-1, e.g. 0.9); "
            "the document is stored either way."
        ),
    ),
]

# kb_update: every field optional, each with the same type and limit as kb_add's.
_NewTitle = Annotated[_Title | None, Field(description="New title; omit to keep it.")]
_NewContent = Annotated[
    _Content | None,
    Field(
        description=(
            f"New full text (at most {MAX_CONTENT_CHARS} characters; only passages whose "
            "text changed are re-embedded); omit to keep it."
        )
    ),
]
_NewTags = Annotated[
    list[_Tag] | None,
    Field(
        strict=True,
        max_length=MAX_TAGS,
        description=(
            f"New tags, replacing the old ones (up to {MAX_TAGS}, each 1-{MAX_TAG_CHARS} "
            "characters); omit to keep them."
        ),
    ),
]
_NewMetadata = Annotated[
    dict[str, Any] | None,
    Field(
        strict=True,
        max_length=MAX_METADATA_BYTES // 2,
        description=(
            f"New metadata object, replacing the old one (at most {MAX_METADATA_BYTES} bytes "
            "as JSON); omit to keep it."
        ),
    ),
]

_OptionalId = Annotated[
    str | None,
    Field(
        strict=True,
        max_length=MAX_ID_CHARS,
        description="Document id, as kb_add or kb_search returned it (or give external_id).",
    ),
]
_KeyNamespace = Annotated[
    str | None,
    Field(
        strict=True,
        max_length=64,
        description=(
            'With external_id: the key\'s namespace (default "default"); with id: '
            "the document must be in it (omit for any namespace)."
        ),
    ),
]
