"""decode_embeddings: base64 float32 or JSON floats, ordered by index; malformed answers refused;
the call's timeout drawn from the request deadline."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import openai
import pytest

from kb_mcp.deadline import deadline
from kb_mcp.embeddings.lean import _within_deadline, decode_embeddings
from kb_mcp.errors import EmbeddingError
from tests.support.fakes import fake_openai_key


def _b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _body(data: Any) -> bytes:
    return json.dumps({"object": "list", "data": data}).encode()


def test_base64_vectors_are_decoded_and_put_in_index_order() -> None:
    """Little-endian float32, decoded once; items answered out of order are reordered."""
    body = _body(
        [
            {"index": 1, "embedding": _b64([0.5, -2.0])},
            {"index": 0, "embedding": _b64([1.25, 0.0])},
        ]
    )
    assert decode_embeddings(body, expected=2) == [[1.25, 0.0], [0.5, -2.0]]


def test_json_float_vectors_from_a_compatible_endpoint_are_accepted() -> None:
    """An endpoint that ignores encoding_format=base64 and answers floats still works."""
    assert decode_embeddings(_body([{"index": 0, "embedding": [0.1, 0.2]}]), expected=1) == [
        [0.1, 0.2]
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "invalid json"),
        (json.dumps({"error": "x"}).encode(), "without a data list"),
        (_body([]), "returned 0 vectors for 1 texts"),
        (_body(["x"]), "malformed data item"),
        (_body([{"index": 3, "embedding": _b64([1.0])}]), "bad or repeated index"),
        (_body([{"index": 0, "embedding": "***"}]), "invalid base64"),
        (_body([{"index": 0, "embedding": base64.b64encode(b"abc").decode()}]), "not float32"),
        (_body([{"index": 0, "embedding": ["a"]}]), "non-numeric vector"),
        (_body([{"index": 0}]), "without a vector"),
    ],
)
def test_malformed_answers_raise_embedding_error(body: bytes, message: str) -> None:
    """Each way an answer can be wrong gets a clear EmbeddingError, never a crash."""
    with pytest.raises(EmbeddingError, match=message):
        decode_embeddings(body, expected=1)


def test_a_repeated_index_is_refused() -> None:
    """Two items claiming the same index would leave a text without its vector."""
    body = _body([{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}])
    with pytest.raises(EmbeddingError, match="repeated index"):
        decode_embeddings(body, expected=2)


async def test_the_call_timeout_is_what_is_left_of_the_request_deadline() -> None:
    """Inside a 1 s deadline the call's timeout is at most 1 s; a client timeout shorter
    than what is left stays; outside any deadline the client's own applies."""
    client = openai.AsyncOpenAI(api_key=fake_openai_key(), timeout=30.0)
    short = openai.AsyncOpenAI(api_key=fake_openai_key(), timeout=0.5)
    try:
        assert _within_deadline(client) == {}
        async with deadline(1.0):
            options = _within_deadline(client)
            assert 0 < options["timeout"] <= 1.0  # type: ignore[operator]
            assert _within_deadline(short) == {}
    finally:
        await client.close()
        await short.close()
