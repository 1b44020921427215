"""What the embedding code needs from the OpenAI layer.

`OpenAIClientHolder` implements it (hot-swapped clients, refresh and one retry on 401).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["EmbeddingsBackend"]


class EmbeddingsBackend(Protocol):
    """Creates embeddings for a batch of texts, in input order."""

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        """One vector per text. Raises `EmbeddingError` (or `EmbeddingAuthError`) on failure."""
        ...
