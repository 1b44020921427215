"""The filter and namespace arguments of the knowledge-base tools, and their checks.

kb_search and kb_list take the same filter arguments (and `resources/list` the default
namespace's documents); `document_filter` turns them into one `DocumentFilter`
(`kb_mcp.db.filters`, which builds the SQL). Every list carries its limit in the schema
and is refused by its length before its items are looked at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kb_mcp.db.filters import (
    DEFAULT_NAMESPACE,
    MAX_FILTER_TAGS,
    MAX_METADATA_CONDITIONS,
    MAX_METADATA_KEY_CHARS,
    NAMESPACE_PATTERN,
    DocumentFilter,
    MetadataCondition,
)
from kb_mcp.errors import ToolInputError
from kb_mcp.server.validation import MAX_TAG_CHARS, check_tags

__all__ = [
    "MetadataFilterArg",
    "check_namespace",
    "document_filter",
    "parse_instant",
]

_NAMESPACE_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


class MetadataFilterArg(BaseModel):
    """One condition on a top-level metadata key."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=MAX_METADATA_KEY_CHARS, description="A top-level metadata key.")
    op: Literal["eq", "contains", "gt", "gte", "lt", "lte"] = Field(
        description=(
            "eq: the value is exactly `value`; contains: an array holding `value` (or all "
            "of a list), an object holding its pairs, or a scalar equal to it; gt/gte/lt/lte: "
            "a range on a number, or on a date when `value` is an ISO 8601 date/datetime."
        )
    )
    value: Any = Field(description="A JSON value (a number or an ISO 8601 date for ranges).")


_Namespace = Annotated[
    str,
    Field(
        strict=True,
        max_length=64,
        description=f"The namespace (collection) of the documents: {_NAMESPACE_RULE}.",
    ),
]
Namespace = Annotated[_Namespace, Field(default=DEFAULT_NAMESPACE)]
_Tag = Annotated[str, Field(strict=True, max_length=MAX_TAG_CHARS * 2)]
TagsAny = Annotated[
    list[_Tag] | None,
    Field(
        strict=True,
        max_length=MAX_FILTER_TAGS,
        description=f"Only documents having any one of these tags (at most {MAX_FILTER_TAGS}).",
    ),
]
MetadataFilters = Annotated[
    list[MetadataFilterArg] | None,
    Field(
        max_length=MAX_METADATA_CONDITIONS,
        description=(
            "Only documents whose metadata meets every condition "
            f"(at most {MAX_METADATA_CONDITIONS}), e.g. "
            '[{"key": "team", "op": "eq", "value": "ops"}, '
            '{"key": "year", "op": "gte", "value": 2020}].'
        ),
    ),
]


def _instant_arg(what: str) -> Any:
    return Field(
        strict=True,
        max_length=64,
        description=f"Only documents {what} this ISO 8601 date or datetime (UTC if no offset).",
    )


CreatedAfter = Annotated[str | None, _instant_arg("created after")]
CreatedBefore = Annotated[str | None, _instant_arg("created before")]
UpdatedAfter = Annotated[str | None, _instant_arg("updated after")]
UpdatedBefore = Annotated[str | None, _instant_arg("updated before")]


def check_namespace(value: str | None, *, default: str | None = DEFAULT_NAMESPACE) -> str | None:
    """A namespace name (see `_NAMESPACE_RULE`), or `default` when omitted."""
    if value is None:
        return default
    if not isinstance(value, str) or not NAMESPACE_PATTERN.fullmatch(value):
        raise ToolInputError(f"namespace must be {_NAMESPACE_RULE}")
    return value


def parse_instant(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 date or datetime (UTC when it has no offset), or None."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise ToolInputError(
            f"{what} must be an ISO 8601 date or datetime such as 2024-05-01 or "
            "2024-05-01T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _condition(index: int, arg: MetadataFilterArg) -> MetadataCondition:
    what = f"metadata_filter[{index}]"
    value = arg.value
    if arg.op in {"gt", "gte", "lt", "lte"}:
        if isinstance(value, str):
            value = parse_instant(value, f"{what}.value")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolInputError(f"{what}: a {arg.op} range needs a number or an ISO 8601 date")
    if not arg.key:
        raise ToolInputError(f"{what}.key must not be empty")
    try:
        return MetadataCondition(arg.key, arg.op, value)
    except ValueError as exc:
        raise ToolInputError(f"{what}: {exc}") from None


def document_filter(
    *,
    namespace: str | None,
    tags: list[str] | None = None,
    tags_any: list[str] | None = None,
    metadata_filter: list[MetadataFilterArg] | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    updated_after: str | None = None,
    updated_before: str | None = None,
) -> DocumentFilter:
    """The tools' filter arguments, checked, as one `DocumentFilter`."""
    conditions = metadata_filter or []
    if len(conditions) > MAX_METADATA_CONDITIONS:
        raise ToolInputError(
            f"metadata_filter has {len(conditions)} conditions; the limit is "
            f"{MAX_METADATA_CONDITIONS}"
        )
    return DocumentFilter(
        namespace=check_namespace(namespace) or DEFAULT_NAMESPACE,
        tags_all=tuple(check_tags(tags, what="tags")),
        tags_any=tuple(check_tags(tags_any, what="tags_any")),
        metadata=tuple(_condition(i, c) for i, c in enumerate(conditions)),
        created_after=parse_instant(created_after, "created_after"),
        created_before=parse_instant(created_before, "created_before"),
        updated_after=parse_instant(updated_after, "updated_after"),
        updated_before=parse_instant(updated_before, "updated_before"),
    )
