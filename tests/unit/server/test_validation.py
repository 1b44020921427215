"""Tool argument checks: what is accepted, and the message for what is not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from kb_mcp.db.models import PageCursor
from kb_mcp.errors import ToolInputError
from kb_mcp.server.cursors import decode_cursor, encode_cursor
from kb_mcp.server.validation import (
    MAX_CONTENT_CHARS,
    MAX_METADATA_BYTES,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    check_content,
    check_limit,
    check_metadata,
    check_query,
    check_tags,
    check_title,
    parse_document_id,
)

KEY = b"k" * 32


def test_good_values_pass_normalised() -> None:
    """Titles and tags are stripped, tags de-duplicated in order; content is kept as given."""
    assert check_title("  A title \n") == "A title"
    assert check_content("  body  ") == "  body  "
    assert check_tags([" a ", "b", "a"]) == ["a", "b"]
    assert check_tags(None) == []
    assert check_metadata({"k": [1, 2.5, None, True, {"x": "y"}]}) == {
        "k": [1, 2.5, None, True, {"x": "y"}]
    }
    assert check_metadata(None) == {}
    assert check_query(" what is it ") == "what is it"
    assert check_limit(1) == 1
    assert check_limit(50) == 50


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_title("   "), "title must not be empty"),
        (lambda: check_title("t" * (MAX_TITLE_CHARS + 1)), "limit is 500"),
        (lambda: check_title("a\x00b"), "NUL"),
        (lambda: check_title("\ud800"), "unpaired surrogate"),
        (lambda: check_content(""), "content must not be empty"),
        (lambda: check_content(" \n\t"), "content must not be empty"),
        (lambda: check_content("x" * (MAX_CONTENT_CHARS + 1)), "limit is 200000"),
        (lambda: check_content("a\x00"), "content must not contain NUL"),
        (lambda: check_tags([str(i) for i in range(MAX_TAGS + 1)]), "limit is 32"),
        (lambda: check_tags(["x" * (MAX_TAG_CHARS + 1)]), r"tags\[0\] is 65 characters"),
        (lambda: check_tags(["ok", " "]), r"tags\[1\] must not be empty"),
        (lambda: check_tags(["ok", 3]), r"tags\[1\] must be a string"),  # type: ignore[list-item]
        (lambda: check_tags("python"), "must be a list of strings"),
        (lambda: check_metadata([1, 2]), "metadata must be a JSON object"),
        (lambda: check_metadata({"x": "y" * MAX_METADATA_BYTES}), "limit is 16384"),
        (lambda: check_metadata({"x": float("nan")}), "finite numbers"),
        (lambda: check_metadata({"x": object()}), "only JSON values"),
        (lambda: check_metadata({"x": "a\x00"}), "metadata must not contain NUL"),
        (lambda: check_query(""), "query must not be empty"),
        (lambda: check_query("q" * 4001), "limit is 4000"),
        (lambda: check_limit(0), "limit must be an integer from 1 to 50, got 0"),
        (lambda: check_limit(51), "got 51"),
        (lambda: check_limit(True), "got True"),
        (lambda: parse_document_id("not-a-uuid"), "id must be a document id"),
        (lambda: parse_document_id(""), "id must be a document id"),
        (lambda: decode_cursor("%%%", key=KEY), "cursor is not one kb_list returned"),
        (lambda: decode_cursor("bm9wZQ", key=KEY), "cursor is not one kb_list returned"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(call: Any, message: str) -> None:
    """Each rejected value raises ToolInputError saying what is wrong."""
    with pytest.raises(ToolInputError, match=message):
        call()


def test_a_multibyte_metadata_object_is_measured_in_bytes() -> None:
    """The 16 KB limit counts UTF-8 bytes, not characters."""
    check_metadata({"x": "é" * (MAX_METADATA_BYTES // 2 - 10)})
    with pytest.raises(ToolInputError, match="bytes as JSON"):
        check_metadata({"x": "é" * (MAX_METADATA_BYTES // 2 + 1)})


def test_a_cursor_round_trips() -> None:
    """encode_cursor and decode_cursor agree, to the microsecond."""
    cursor = PageCursor(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid4())
    assert decode_cursor(encode_cursor(cursor, key=KEY), key=KEY) == cursor
    assert decode_cursor(None, key=KEY) is None
    assert decode_cursor("  ", key=KEY) is None


def test_a_document_id_parses_in_any_case() -> None:
    """A UUID is accepted upper or lower case, with surrounding spaces."""
    value = uuid4()
    assert parse_document_id(f" {str(value).upper()} ") == value
