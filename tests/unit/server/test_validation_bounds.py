"""Validators refuse by the limit before per-item work: counted, not timed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from kb_mcp.db.models import PageCursor
from kb_mcp.errors import ToolInputError
from kb_mcp.server.cursors import decode_cursor, encode_cursor
from kb_mcp.server.limits import too_many_json_values
from kb_mcp.server.validation import (
    MAX_METADATA_BYTES,
    MAX_SAFE_INTEGER,
    check_metadata,
    check_tags,
    parse_document_id,
)

KEY = b"k" * 32


class CountingList(list[Any]):
    """A list that counts how many items were looked at."""

    touched = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            CountingList.touched += 1
            yield item

    def __getitem__(self, index: Any) -> Any:
        CountingList.touched += 1
        return super().__getitem__(index)


@pytest.mark.parametrize("size", [33, 1_000, 400_000])
def test_too_many_tags_are_refused_without_looking_at_one(size: int) -> None:
    """check_tags refuses by length: no tag is read, at any size."""
    CountingList.touched = 0
    tags = CountingList(f"t{i}" for i in range(size))
    with pytest.raises(ToolInputError, match=f"has {size} entries; the limit is 32"):
        check_tags(tags)
    assert CountingList.touched == 0


def test_duplicate_tags_are_removed_in_linear_time() -> None:
    """32 tags of which many repeat: de-duplicated in order (a set, not a list lookup)."""
    assert check_tags(["a", "b"] * 16) == ["a", "b"]


@pytest.mark.parametrize("size", [10_000, 1_000_000])
def test_huge_metadata_is_refused_after_a_bounded_walk(size: int) -> None:
    """A metadata list far over 16 KB is refused once the budget runs out, not after all of it."""
    CountingList.touched = 0
    with pytest.raises(ToolInputError, match="size limit"):
        check_metadata({"items": CountingList([1] * size)})
    assert CountingList.touched <= MAX_METADATA_BYTES


def test_deep_metadata_is_refused_by_depth() -> None:
    """Nesting deeper than 16 levels is refused (and never reaches json.dumps recursion)."""
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ToolInputError, match="nested deeper than 16"):
        check_metadata({"x": deep})


def test_metadata_integers_must_be_exact_doubles() -> None:
    """2**53 passes; 2**53 + 1 and huge integers are refused with advice."""
    assert check_metadata({"n": MAX_SAFE_INTEGER}) == {"n": MAX_SAFE_INTEGER}
    with pytest.raises(ToolInputError, match="as strings"):
        check_metadata({"n": MAX_SAFE_INTEGER + 1})
    with pytest.raises(ToolInputError, match="as strings"):
        check_metadata({"n": [10**400]})


@pytest.mark.parametrize(
    "value",
    [
        "\u0661" * 8 + "-" + "1" * 4 + "-" + "1" * 4 + "-" + "1" * 4 + "-" + "1" * 12,
        "{12345678-1234-1234-1234-123456789abc}",
        "12345678123412341234123456789abc",
        "1" * 10_000,
    ],
)
def test_document_ids_are_ascii_hex_in_the_usual_form(value: str) -> None:
    """Non-ASCII digits, braces, hyphenless and huge strings are refused."""
    with pytest.raises(ToolInputError, match="id must be a document id"):
        parse_document_id(value)


def test_cursors_are_signed_and_range_checked() -> None:
    """A cursor under another key, with a flipped byte, or forged in the old format is refused."""
    cursor = PageCursor(datetime(2026, 1, 2, tzinfo=UTC), uuid4())
    good = encode_cursor(cursor, key=KEY)
    assert decode_cursor(good, key=KEY) == cursor
    flipped = good[:5] + ("A" if good[5] != "A" else "B") + good[6:]
    old_format = (
        "MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHxlMTg0YmY4Yi1hOGNkLTRmYTgtOTE4Yy02NGMyNTU4M2QxYjE"
    )
    for bad in (encode_cursor(cursor, key=b"other" * 8), flipped, old_format, "v1..", "v1.é.x"):
        with pytest.raises(ToolInputError, match="cursor"):
            decode_cursor(bad, key=KEY)


def test_the_json_value_scan_stops_at_its_limit() -> None:
    """Few values pass; more commas than the limit (outside strings) are refused."""
    assert not too_many_json_values(b'{"content": "a, b, c, d, e, f"}', 3)
    assert too_many_json_values(b'{"tags": ["a", "b", "c", "d", "e"]}', 3)
    assert not too_many_json_values(b'{"s": "quote \\" and, commas, inside"}', 1)
    assert too_many_json_values(b'"' + b'\\"' * 1000 + b'"', 10)  # the step budget runs out
