"""The filter model and its SQL: bounds checked before anything is built, values only ever
parameters, one numbering for every hook of a statement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kb_mcp.db.filters import (
    MAX_METADATA_CONDITIONS,
    DocumentFilter,
    MetadataCondition,
    bind,
    document_filter,
    documents_filter,
)


def test_an_unfiltered_predicate_is_true_with_no_parameters() -> None:
    """Only a namespace: nothing to add, nothing to bind."""
    assert DocumentFilter().predicate("d", 5) == ("TRUE", [])
    assert not DocumentFilter(namespace="other").narrows


def test_values_are_parameters_numbered_after_the_statements_own() -> None:
    """Every value (tags, keys, bounds) is a $n parameter; none is in the SQL text."""
    flt = DocumentFilter(
        tags_any=("x'; DROP TABLE documents; --",),
        metadata=(MetadataCondition("k'ey", "gte", 3),),
        created_after=datetime(2024, 1, 1, tzinfo=UTC),
    )
    sql, params = flt.predicate("d", 4)
    assert "DROP" not in sql
    assert "k'ey" not in sql
    assert params == [
        ["x'; DROP TABLE documents; --"],
        datetime(2024, 1, 1, tzinfo=UTC),
        "k'ey",
        Decimal("3"),
    ]
    assert "$4::text[]" in sql
    assert "$7::numeric" in sql
    assert flt.narrows


def test_bind_fills_every_hook_of_a_statement_with_one_set_of_parameters() -> None:
    """Two hooks (per candidate and on joined documents) share the same $n values."""
    statement = (
        f"SELECT 1 FROM chunks c WHERE {document_filter('c.document_id', '$2')} "  # noqa: S608
        f"UNION SELECT 1 FROM documents d WHERE {documents_filter('d', '$2')}"
    )
    flt = DocumentFilter(tags_all=("a",))
    sql, args = bind(statement, ("q", "default"), flt)
    assert args == ["q", "default", ["a"]]
    assert sql.count("$3::text[]") == 2
    assert "kb_f.tags @> $3::text[]" in sql
    assert "d.tags @> $3::text[]" in sql
    assert "kb:filter" not in sql


@pytest.mark.parametrize(
    "make",
    [
        lambda: DocumentFilter(namespace="has space"),
        lambda: DocumentFilter(namespace="a:b"),
        lambda: DocumentFilter(namespace="x" * 65),
        lambda: DocumentFilter(
            metadata=(MetadataCondition("k", "eq", 1),) * (MAX_METADATA_CONDITIONS + 1)
        ),
        lambda: DocumentFilter(tags_any=("t",) * 33),
        lambda: MetadataCondition("", "eq", 1),
        lambda: MetadataCondition("k", "gt", "2024-01-01"),
        lambda: MetadataCondition("k", "lt", True),
        lambda: MetadataCondition("k", "like", 1),  # type: ignore[arg-type]
    ],
)
def test_out_of_bounds_filters_are_refused(make: object) -> None:
    """Bad namespaces, too many conditions or tags, bad keys, ops and range values."""
    with pytest.raises(ValueError, match=r"namespace|at most|metadata|range"):
        make()  # type: ignore[operator]
