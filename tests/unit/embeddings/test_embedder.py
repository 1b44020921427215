"""Embedder: batching, order, and the shape check of every answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.errors import EmbeddingError

Shape = Callable[[Sequence[str], int | None], list[list[float]]]


def _honest(texts: Sequence[str], dimensions: int | None) -> list[list[float]]:
    size = dimensions or 8
    return [[float(len(text))] + [0.0] * (size - 1) for text in texts]


@dataclass
class ScriptedBackend:
    """An `EmbeddingsBackend` computing answers in memory, recording each request."""

    shape: Shape = _honest
    requests: list[tuple[list[str], str, int | None]] = field(default_factory=list)

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        self.requests.append((list(texts), model, dimensions))
        return self.shape(texts, dimensions)


async def test_texts_go_out_in_batches_and_come_back_in_order() -> None:
    """Ten texts with batch size 4 make three requests; vectors keep the input order."""
    backend = ScriptedBackend()
    embedder = Embedder(backend, model="text-embedding-3-small", dimensions=8, batch_size=4)
    texts = ["a" * n for n in range(1, 11)]
    vectors = await embedder.embed(texts)
    assert [len(batch) for batch, _, _ in backend.requests] == [4, 4, 2]
    assert [v[0] for v in vectors] == [float(n) for n in range(1, 11)]
    assert all(len(v) == 8 for v in vectors)


async def test_no_texts_make_no_request() -> None:
    """An empty input is answered without calling the backend."""
    backend = ScriptedBackend()
    assert await Embedder(backend, model="m", dimensions=8).embed([]) == []
    assert backend.requests == []


@pytest.mark.parametrize(
    ("model", "explicit", "sent"),
    [
        ("text-embedding-3-small", None, 8),
        ("text-embedding-3-large", None, 8),
        ("text-embedding-ada-002", None, None),
        ("nomic-embed-text", True, 8),
        ("text-embedding-3-small", False, None),
    ],
)
async def test_dimensions_are_requested_only_from_models_that_take_them(
    model: str, explicit: bool | None, sent: int | None
) -> None:
    """text-embedding-3-* get `dimensions`; other models only when asked to."""
    backend = ScriptedBackend(shape=lambda texts, _d: _honest(texts, 8))
    embedder = Embedder(backend, model=model, dimensions=8, request_dimensions=explicit)
    await embedder.embed_one("hello")
    assert backend.requests == [(["hello"], model, sent)]


async def test_a_vector_of_the_wrong_size_is_an_embedding_error() -> None:
    """A model answering with another dimension fails with a hint about the setting."""
    backend = ScriptedBackend(shape=lambda texts, _d: _honest(texts, 12))
    embedder = Embedder(backend, model="m", dimensions=8)
    with pytest.raises(EmbeddingError, match="returned 12 dimensions, expected 8") as caught:
        await embedder.embed(["x"])
    assert "KB_MCP_EMBEDDING_DIMENSIONS" in caught.value.hint


async def test_a_missing_vector_is_an_embedding_error() -> None:
    """Fewer vectors than texts is refused rather than silently misaligned."""
    backend = ScriptedBackend(shape=lambda texts, d: _honest(texts, d)[:-1])
    embedder = Embedder(backend, model="text-embedding-3-small", dimensions=8)
    with pytest.raises(EmbeddingError, match="returned 1 vectors for 2 texts"):
        await embedder.embed(["x", "y"])


async def test_a_non_finite_component_is_an_embedding_error() -> None:
    """NaN or infinity never reaches the database."""
    backend = ScriptedBackend(shape=lambda texts, _d: [[float("nan")] * 8 for _ in texts])
    embedder = Embedder(backend, model="m", dimensions=8)
    with pytest.raises(EmbeddingError, match="non-finite"):
        await embedder.embed(["x"])


async def test_a_zero_vector_is_an_embedding_error() -> None:
    """A zero vector has no direction: cosine scores against it would be NaN."""
    backend = ScriptedBackend(shape=lambda texts, _d: [[0.0] * 8 for _ in texts])
    embedder = Embedder(backend, model="m", dimensions=8)
    with pytest.raises(EmbeddingError, match="zero vector"):
        await embedder.embed(["x"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "", "dimensions": 8}, "model"),
        ({"model": "m", "dimensions": 0}, "dimensions"),
        ({"model": "m", "dimensions": 8, "batch_size": 0}, "batch_size"),
        ({"model": "m", "dimensions": 8, "batch_size": 5000}, "batch_size"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    """An empty model, a non-positive dimension or an impossible batch size is a ValueError."""
    with pytest.raises(ValueError, match=message):
        Embedder(ScriptedBackend(), **kwargs)  # type: ignore[arg-type]
