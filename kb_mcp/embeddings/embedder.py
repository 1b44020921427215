"""`Embedder`: batched embedding calls with the shape of every answer checked.

It sits on an `EmbeddingsBackend` (in production the `OpenAIClientHolder`, which honours
`OPENAI_BASE_URL`, hot-swaps keys and retries once on 401). Texts go out in batches of
`batch_size`, one request after another (gentle on rate limits; a maximal document is a
handful of requests). Every answer must hold one vector per text, each with exactly
`dimensions` finite numbers, not all zero, or the call fails with `EmbeddingError`: a
vector of the wrong size would be refused by the database, or worse, stored and searched
wrongly.

The `dimensions` request parameter is sent only to models that accept it (OpenAI's
`text-embedding-3-*` family) unless `request_dimensions` says otherwise; other models
answer with their native size, which must then equal `dimensions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import structlog

from kb_mcp.embeddings.port import EmbeddingsBackend
from kb_mcp.errors import EmbeddingError

__all__ = ["DEFAULT_BATCH_SIZE", "Embedder"]

log = structlog.get_logger(__name__)

DEFAULT_BATCH_SIZE = 64
_MAX_BATCH_SIZE = 2048
"""OpenAI's limit on inputs per embeddings request."""


class Embedder:
    """Embeds texts with one model at one dimension, in batches."""

    def __init__(
        self,
        backend: EmbeddingsBackend,
        *,
        model: str,
        dimensions: int,
        batch_size: int = DEFAULT_BATCH_SIZE,
        request_dimensions: bool | None = None,
    ) -> None:
        if not model:
            raise ValueError("model must not be empty")
        if dimensions < 1:
            raise ValueError("dimensions must be at least 1")
        if not 1 <= batch_size <= _MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {_MAX_BATCH_SIZE}")
        self._backend = backend
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        if request_dimensions is None:
            request_dimensions = model.startswith("text-embedding-3")
        self._requested: int | None = dimensions if request_dimensions else None

    def __repr__(self) -> str:
        return f"Embedder(model={self.model!r}, dimensions={self.dimensions})"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order. Raises `EmbeddingError` on any failure."""
        vectors: list[list[float]] = []
        for offset in range(0, len(texts), self.batch_size):
            batch = list(texts[offset : offset + self.batch_size])
            answer = await self._backend.create_embeddings(
                batch, model=self.model, dimensions=self._requested
            )
            vectors.extend(self._checked(answer, len(batch)))
        return vectors

    async def embed_one(self, text: str) -> list[float]:
        """The vector of one text (a search query)."""
        (vector,) = await self.embed([text])
        return vector

    def _checked(self, answer: list[list[float]], expected: int) -> list[list[float]]:
        if len(answer) != expected:
            log.error("embeddings.bad_answer", model=self.model, expected=expected, got=len(answer))
            raise EmbeddingError(
                f"embeddings endpoint returned {len(answer)} vectors for {expected} texts",
                hint="check OPENAI_BASE_URL points at an OpenAI-compatible embeddings API",
            )
        checked: list[list[float]] = []
        for vector in answer:
            if len(vector) != self.dimensions:
                log.error(
                    "embeddings.wrong_dimensions",
                    model=self.model,
                    expected=self.dimensions,
                    got=len(vector),
                )
                raise EmbeddingError(
                    f"model {self.model} returned {len(vector)} dimensions, "
                    f"expected {self.dimensions}",
                    hint="set KB_MCP_EMBEDDING_DIMENSIONS to the model's output size",
                )
            floats = _finite_floats(vector)
            if floats is None:
                raise EmbeddingError(f"model {self.model} returned a non-finite vector component")
            if not any(floats):
                # Cosine distance to a zero vector is undefined (NaN scores).
                raise EmbeddingError(f"model {self.model} returned a zero vector")
            checked.append(floats)
        return checked


def _finite_floats(vector: Sequence[float]) -> list[float] | None:
    """`vector` as a list of floats, or None when a component is not a finite number.

    A list of numbers whose sum is finite has only finite components: it is taken as it
    is (one C-level pass; the decoded answers are lists of floats). Anything else (a
    non-number, an infinity or NaN, a sum that overflows) is converted and checked
    component by component.
    """
    if type(vector) is list:
        try:
            if math.isfinite(math.fsum(vector)):
                return vector
        except (OverflowError, TypeError, ValueError):
            pass
    try:
        floats = [float(x) for x in vector]
    except (TypeError, ValueError):
        return None
    return floats if all(math.isfinite(x) for x in floats) else None
