"""One embeddings request through the `openai` client, minus what the product never reads.

`AsyncEmbeddings.create` builds a typed request (`maybe_transform` over the params),
then a `CreateEmbeddingResponse` with one model object per vector and, for
`encoding_format="float"`, a Python float per component from the JSON; under load that
was half of `kb-mcp serve`'s CPU (py-spy, `docs/PERFORMANCE.md`). `create_embeddings` keeps
the client for everything that matters (the API key, retries with backoff, timeouts,
`AuthenticationError` on 401 and the other `APIStatusError`s, which `OpenAIClientHolder`
turns into its refresh-and-retry and our errors) but posts the JSON body itself through
the client's documented `post(..., cast_to=httpx.Response)` and asks for base64: each
vector is decoded once, from little-endian float32 bytes into an `array`, then a list.
An OpenAI-compatible endpoint that ignores `encoding_format` and answers JSON floats is
accepted too.

`array` over numpy, measured (`python -m bench.bench_embeddings`): numpy decodes a
1536-float vector ~25 us faster, against ~2,400 us of client CPU per call: 1 %, not
worth a 30 MB dependency. A malformed answer raises `EmbeddingError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from array import array
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
from openai._types import RequestOptions

from kb_mcp.deadline import remaining
from kb_mcp.errors import EmbeddingError

__all__ = ["create_embeddings", "decode_embeddings"]

_HINT = "check OPENAI_BASE_URL points at an OpenAI-compatible embeddings API"
_SWAP_BYTES = sys.byteorder != "little"
"""OpenAI's base64 vectors are little-endian float32."""


async def create_embeddings(
    client: openai.AsyncOpenAI, texts: Sequence[str], *, model: str, dimensions: int | None
) -> list[list[float]]:
    """One vector per text, in input order, from `POST /embeddings` (base64 encoding).

    Raises what the client raises (`openai.APIError` and subclasses), or `EmbeddingError`
    when the answer does not parse.
    """
    body: dict[str, Any] = {"input": list(texts), "model": model, "encoding_format": "base64"}
    if dimensions is not None:
        body["dimensions"] = dimensions
    response = await client.post(
        "/embeddings", body=body, cast_to=httpx2.Response, options=_within_deadline(client)
    )
    return decode_embeddings(response.content, expected=len(texts))


def _within_deadline(client: openai.AsyncOpenAI) -> RequestOptions:
    """The call's timeout: the client's, or what is left of the request's deadline when
    that is sooner (`kb_mcp.deadline`); the deadline also cancels the call outright."""
    left = remaining()
    if left is None:
        return {}
    configured = client.timeout
    if isinstance(configured, int | float) and configured <= left:
        return {}
    return {"timeout": max(left, 0.001)}


def decode_embeddings(content: bytes, *, expected: int) -> list[list[float]]:
    """The vectors of an embeddings response body, ordered by their `index`."""
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise EmbeddingError("embeddings endpoint answered with invalid json", hint=_HINT) from exc
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise EmbeddingError("embeddings endpoint answered without a data list", hint=_HINT)
    if len(data) != expected:
        raise EmbeddingError(
            f"embeddings endpoint returned {len(data)} vectors for {expected} texts", hint=_HINT
        )
    vectors: list[list[float] | None] = [None] * expected
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise EmbeddingError("embeddings endpoint answered a malformed data item", hint=_HINT)
        index = item.get("index", position)
        if not isinstance(index, int) or not 0 <= index < expected or vectors[index] is not None:
            raise EmbeddingError("embeddings endpoint answered a bad or repeated index", hint=_HINT)
        vectors[index] = _vector(item.get("embedding"))
    return [v for v in vectors if v is not None]


def _vector(embedding: object) -> list[float]:
    if isinstance(embedding, str):
        try:
            raw = base64.b64decode(embedding, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EmbeddingError("embeddings endpoint answered invalid base64", hint=_HINT) from exc
        if len(raw) % 4:
            raise EmbeddingError(
                "embeddings endpoint answered a vector that is not float32", hint=_HINT
            )
        floats = array("f")
        floats.frombytes(raw)
        if _SWAP_BYTES:  # pragma: no cover - big-endian hosts only
            floats.byteswap()
        return floats.tolist()
    if isinstance(embedding, list):
        try:
            return [float(x) for x in embedding]
        except (TypeError, ValueError) as exc:
            raise EmbeddingError(
                "embeddings endpoint answered a non-numeric vector", hint=_HINT
            ) from exc
    raise EmbeddingError("embeddings endpoint answered an item without a vector", hint=_HINT)
