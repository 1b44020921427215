"""A bounded in-process cache of embeddings, keyed by model, dimensions and text.

An embedding is a pure function of (model, requested dimensions, text): the API key
that paid for it does not change it, so a rotation keeps the cache. `EmbeddingCache` is
an LRU bounded both by entries and by bytes (vectors are held as `array("d")`, 8 bytes a
component, plus the text); `CachingEmbeddingsBackend` puts it in front of any
`EmbeddingsBackend` (in production the `OpenAIClientHolder`): a search for a query seen
before, or a `kb_add` of a passage already embedded (the same text in another document,
a document added again), costs no OpenAI call. Texts repeated within one batch are sent
once. Hits and misses are the `EmbeddingCacheHits` / `EmbeddingCacheMisses` counters,
evictions `EmbeddingCacheEvictions`, emitted with the other metrics (EMF).

Only vectors the `Embedder` would accept are kept (finite, not all zero, of the
requested size), so a bad answer is not served again from here. Two concurrent misses
for the same text both call the API (no single-flight): the second answer replaces the
first, identical, entry.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Sequence

from secretswap.metrics import MetricsRegistry

from kb_mcp.embeddings.port import EmbeddingsBackend

__all__ = ["CachingEmbeddingsBackend", "EmbeddingCache"]

CacheKey = tuple[str, int | None, str]
_ENTRY_OVERHEAD_BYTES = 200
"""Key tuple, dict slot and array header, roughly, per entry."""


class EmbeddingCache:
    """LRU of vectors, at most `max_entries` entries and `max_bytes` bytes."""

    def __init__(
        self, *, max_entries: int, max_bytes: int, metrics: MetricsRegistry | None = None
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, array[float]] = OrderedDict()
        self._sizes: dict[CacheKey, int] = {}
        self.bytes = 0
        registry = metrics or MetricsRegistry()
        self._hits = registry.counter("EmbeddingCacheHits")
        self._misses = registry.counter("EmbeddingCacheMisses")
        self._evictions = registry.counter("EmbeddingCacheEvictions")

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"EmbeddingCache(entries={len(self)}/{self.max_entries}, "
            f"bytes={self.bytes}/{self.max_bytes})"
        )

    @property
    def hits(self) -> int:
        return self._hits.value

    @property
    def misses(self) -> int:
        return self._misses.value

    def get(self, model: str, dimensions: int | None, text: str) -> list[float] | None:
        """The cached vector (a new list), counting a hit or a miss."""
        key = (model, dimensions, text)
        vector = self._entries.get(key)
        if vector is None:
            self._misses.value += 1
            return None
        self._entries.move_to_end(key)
        self._hits.value += 1
        return vector.tolist()

    def put(self, model: str, dimensions: int | None, text: str, vector: Sequence[float]) -> None:
        """Store a vector; the least recently used entries go to stay within both bounds."""
        key = (model, dimensions, text)
        size = 8 * len(vector) + len(text.encode("utf-8", "surrogatepass")) + _ENTRY_OVERHEAD_BYTES
        if size > self.max_bytes:
            return  # larger than the whole cache: not worth evicting everything for
        self._discard(key)
        self._entries[key] = array("d", vector)
        self._sizes[key] = size
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._discard(oldest)
            self._evictions.value += 1

    def clear(self) -> None:
        self._entries.clear()
        self._sizes.clear()
        self.bytes = 0

    def _discard(self, key: CacheKey) -> None:
        if self._entries.pop(key, None) is not None:
            self.bytes -= self._sizes.pop(key)


class CachingEmbeddingsBackend:
    """An `EmbeddingsBackend` that answers from `cache` and asks `backend` for the rest."""

    def __init__(self, backend: EmbeddingsBackend, cache: EmbeddingCache) -> None:
        self._backend = backend
        self.cache = cache

    def __repr__(self) -> str:
        return f"CachingEmbeddingsBackend({self.cache!r})"

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        """One vector per text, in order; only texts not cached reach the backend, once."""
        found: list[list[float] | None] = []
        missing: dict[str, list[int]] = {}
        for position, text in enumerate(texts):
            if text in missing:  # repeated within the batch: one request, one miss
                missing[text].append(position)
                found.append(None)
                continue
            vector = self.cache.get(model, dimensions, text)
            if vector is None:
                missing[text] = [position]
            found.append(vector)
        if missing:
            asked = list(missing)
            answer = await self._backend.create_embeddings(
                asked, model=model, dimensions=dimensions
            )
            if len(answer) != len(asked):
                # The caller's shape check reports it; never cache a misaligned answer.
                return answer
            for text, vector in zip(asked, answer, strict=True):
                if _cacheable(vector, dimensions):
                    self.cache.put(model, dimensions, text, vector)
                for position in missing[text]:
                    found[position] = list(vector)
        return [vector for vector in found if vector is not None]


def _cacheable(vector: Sequence[float], dimensions: int | None) -> bool:
    """Only what the `Embedder` would accept: a bad answer is not kept to fail again."""
    if dimensions is not None and len(vector) != dimensions:
        return False
    total = sum(vector)  # NaN or an infinity anywhere makes the sum non-finite
    return math.isfinite(total) and any(vector)
