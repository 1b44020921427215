"""Vector parameters and the session's HNSW setting."""

from __future__ import annotations

import math

import pytest

from kb_mcp.db.documents import search_candidates
from kb_mcp.db.vectors import SESSION_EF_SEARCH, vector_param, vector_sql


def test_the_session_ef_search_serves_the_default_limit_in_one_statement() -> None:
    """kb_search's default limit (5) needs no more candidates than the session has."""
    assert search_candidates(5) <= SESSION_EF_SEARCH
    assert search_candidates(6) > SESSION_EF_SEARCH or SESSION_EF_SEARCH >= 1000


def test_a_vector_parameter_is_a_list_of_finite_numbers() -> None:
    assert vector_param([0.5, -1.0, 2]) == [0.5, -1.0, 2]
    assert vector_param((1.0, 2.0)) == [1.0, 2.0]
    assert vector_param([1e308, 1e308]) == [1e308, 1e308]  # finite, though the sum overflows
    for bad in ([math.nan], [math.inf, -math.inf], [1.0, -math.inf], ["x"], [None]):
        with pytest.raises(ValueError, match="finite"):
            vector_param(bad)  # type: ignore[arg-type]  # bad input on purpose


def test_vector_sql_casts_a_real_array_to_the_dimension() -> None:
    assert vector_sql(1536, "$1") == "$1::real[]::vector(1536)"
    with pytest.raises(ValueError, match="between 1 and"):
        vector_sql(0, "$1")
