"""Checks on the arguments hybrid search, kb_update and duplicate detection added."""

from __future__ import annotations

from typing import Any

import pytest

from kb_mcp.db.search import SEARCH_MODES as STORE_MODES
from kb_mcp.errors import ToolInputError
from kb_mcp.server.validation import (
    SEARCH_MODES,
    check_dedupe_threshold,
    check_mode,
    check_update,
)


def test_the_server_knows_the_store_modes() -> None:
    """Validation and the search module agree on the modes."""
    assert SEARCH_MODES == STORE_MODES


@pytest.mark.parametrize(("given", "expected"), [("hybrid", "hybrid"), (" Keyword ", "keyword")])
def test_check_mode_accepts_modes(given: str, expected: str) -> None:
    """A known mode, any case and spacing, comes back normalised."""
    assert check_mode(given) == expected


@pytest.mark.parametrize("bad", ["", "semantic", "hybrid!", 3, None])
def test_check_mode_refuses_others(bad: Any) -> None:
    """Anything else names the allowed modes."""
    with pytest.raises(ToolInputError, match="mode must be one of hybrid, vector, keyword"):
        check_mode(bad)


def test_check_dedupe_threshold() -> None:
    """None stays None; (0, 1] passes; the rest is refused with the reason."""
    assert check_dedupe_threshold(None) is None
    assert check_dedupe_threshold(1) == 1.0
    assert check_dedupe_threshold(0.85) == 0.85
    for bad in (0, 0.0, -1, 1.01, float("nan")):
        with pytest.raises(ToolInputError, match="above 0 and at most 1"):
            check_dedupe_threshold(bad)
    for wrong in (True, "0.9", [0.9]):
        with pytest.raises(ToolInputError, match="must be a number"):
            check_dedupe_threshold(wrong)  # type: ignore[arg-type]  # the point of the test


def test_check_update_needs_a_field_and_checks_each() -> None:
    """No field is refused; given fields are checked like kb_add's; None keeps a field."""
    with pytest.raises(ToolInputError, match="at least one of"):
        check_update(None, None, None, None)
    assert check_update(" T ", None, [" a", "a"], None) == ("T", None, ["a"], None)
    assert check_update(None, "body", None, {"k": 1}) == (None, "body", None, {"k": 1})
    with pytest.raises(ToolInputError, match="content must not be empty"):
        check_update(None, "  ", None, None)
    with pytest.raises(ToolInputError, match="metadata must be a JSON object"):
        check_update(None, None, None, ["x"])


# -- filters and namespaces (issue 22) ------------------------------------------------


def test_filter_arguments_become_one_document_filter() -> None:
    """Dates without an offset are UTC; range values parse as numbers or dates."""
    from datetime import UTC, datetime

    from kb_mcp.server.filter_args import MetadataFilterArg, document_filter

    flt = document_filter(
        namespace="proj",
        tags_any=[" a ", "a"],
        metadata_filter=[
            MetadataFilterArg(key="due", op="lt", value="2024-05-01"),
            MetadataFilterArg(key="n", op="gte", value=2.5),
        ],
        created_after="2024-01-01T00:00:00Z",
        updated_before="2024-02-01",
    )
    assert flt.namespace == "proj"
    assert flt.tags_any == ("a",)
    assert flt.metadata[0].value == datetime(2024, 5, 1, tzinfo=UTC)
    assert flt.metadata[1].value == 2.5
    assert flt.created_after == datetime(2024, 1, 1, tzinfo=UTC)
    assert flt.updated_before == datetime(2024, 2, 1, tzinfo=UTC)


def test_bad_filter_arguments_are_refused_with_their_name() -> None:
    """A bad date, a range on a word, a bad namespace: ToolInputError naming the argument."""
    import pytest

    from kb_mcp.errors import ToolInputError
    from kb_mcp.server.filter_args import MetadataFilterArg, document_filter

    with pytest.raises(ToolInputError, match="created_after"):
        document_filter(namespace=None, created_after="yesterday")
    with pytest.raises(ToolInputError, match=r"metadata_filter\[0\]"):
        document_filter(
            namespace=None, metadata_filter=[MetadataFilterArg(key="k", op="gt", value="x")]
        )
    with pytest.raises(ToolInputError, match="namespace"):
        document_filter(namespace="no/slash")
