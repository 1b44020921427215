"""Vector parameters and the session's HNSW setting."""

from __future__ import annotations

import math
import struct

import pytest

from kb_mcp.db.nearest import search_candidates
from kb_mcp.db.vectors import (
    FLOAT4_MAX,
    SESSION_EF_SEARCH,
    decode_vector,
    distance_sql,
    encode_vector,
    query_vector_sql,
    vector_param,
    vector_sql,
)


def test_the_session_ef_search_serves_the_default_limit_in_one_statement() -> None:
    """kb_search's default limit (5) needs no more candidates than the session has."""
    assert search_candidates(5) <= SESSION_EF_SEARCH
    assert search_candidates(6) > SESSION_EF_SEARCH or SESSION_EF_SEARCH >= 1000


def test_a_vector_parameter_is_a_list_of_finite_float4_numbers() -> None:
    assert vector_param([0.5, -1.0, 2]) == [0.5, -1.0, 2]
    assert vector_param((1.0, 2.0)) == [1.0, 2.0]
    assert vector_param([]) == []
    assert vector_param([FLOAT4_MAX, -FLOAT4_MAX]) == [FLOAT4_MAX, -FLOAT4_MAX]
    bad_inputs = (
        [math.nan],
        [1.0, math.nan, 2.0],  # max() alone would not see it
        [math.inf, -math.inf],
        [1.0, -math.inf],
        [1e308, 1e308],  # finite doubles whose sum overflows, too large for a real
        [3.5e38],
        [1e39, -1e39],  # the sum is 0.0
        ["x"],
        [None],
    )
    for bad in bad_inputs:
        with pytest.raises(ValueError, match="finite numbers within the float4 range"):
            vector_param(bad)  # type: ignore[arg-type]  # bad input on purpose


def test_stored_vectors_are_cast_from_real_arrays_and_query_vectors_are_sent_as_vectors() -> None:
    assert vector_sql(1536, "$1") == "$1::real[]::vector(1536)"
    assert query_vector_sql("$1") == "$1::vector"
    assert distance_sql(3, "c.embedding", "$1") == "(c.embedding <=> $1::vector)"
    for bad in (0, 16001):
        with pytest.raises(ValueError, match="between 1 and"):
            vector_sql(bad, "$1")
        with pytest.raises(ValueError, match="between 1 and"):
            distance_sql(bad, "c.embedding", "$1")


def test_the_binary_codec_round_trips_pgvectors_wire_format() -> None:
    values = [0.5, -1.25, 3.0, 0.0]
    data = encode_vector(values)
    # dimensions, an unused zero, then big-endian float4s (pgvector's vector_send)
    assert data == struct.pack(">HH4f", 4, 0, *values)
    assert decode_vector(data) == values
    assert encode_vector("[0.5,-1.25,3,0]") == data  # the text form is accepted too
    assert decode_vector(encode_vector([])) == []
    assert decode_vector(encode_vector([0.1]))[0] == pytest.approx(0.1, rel=1e-7)  # float4
