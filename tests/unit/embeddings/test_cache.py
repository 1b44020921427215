"""EmbeddingCache and CachingEmbeddingsBackend: bounds, keys, counters, and what reaches the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from secretswap.metrics import MetricsRegistry

from kb_mcp.embeddings.cache import CachingEmbeddingsBackend, EmbeddingCache
from kb_mcp.observability.metrics import METRIC_NAMES, EmfEmitter, parse_emf_line

MODEL = "text-embedding-3-small"


@dataclass
class CountingBackend:
    """Vectors derived from each text; records every request it gets."""

    requests: list[list[str]] = field(default_factory=list)
    bad: set[str] = field(default_factory=set)

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        self.requests.append(list(texts))
        size = dimensions or 4
        return [
            [0.0] * size if text in self.bad else [float(len(text))] + [1.0] * (size - 1)
            for text in texts
        ]


def test_get_counts_hits_and_misses_and_keys_by_model_dimensions_and_text() -> None:
    """The same text under another model or dimension count is a different entry."""
    metrics = MetricsRegistry()
    cache = EmbeddingCache(max_entries=10, max_bytes=10**6, metrics=metrics)
    cache.put(MODEL, 4, "q", [1.0, 2.0, 3.0, 4.0])
    assert cache.get(MODEL, 4, "q") == [1.0, 2.0, 3.0, 4.0]
    assert cache.get(MODEL, 8, "q") is None
    assert cache.get("text-embedding-3-large", 4, "q") is None
    assert cache.get(MODEL, 4, "Q") is None
    assert (metrics.total("EmbeddingCacheHits"), metrics.total("EmbeddingCacheMisses")) == (1, 3)


def test_entry_bound_evicts_the_least_recently_used() -> None:
    """At max_entries, a new entry pushes out the one used longest ago."""
    metrics = MetricsRegistry()
    cache = EmbeddingCache(max_entries=2, max_bytes=10**6, metrics=metrics)
    cache.put(MODEL, 1, "a", [1.0])
    cache.put(MODEL, 1, "b", [2.0])
    assert cache.get(MODEL, 1, "a") == [1.0]  # "a" is now the most recent
    cache.put(MODEL, 1, "c", [3.0])
    assert len(cache) == 2
    assert cache.get(MODEL, 1, "b") is None
    assert cache.get(MODEL, 1, "a") == [1.0]
    assert metrics.total("EmbeddingCacheEvictions") == 1


def test_byte_bound_holds_whatever_the_entry_count() -> None:
    """Vectors of 1536 components at 8 bytes each: a 64 KiB cache keeps five, never more."""
    cache = EmbeddingCache(max_entries=1000, max_bytes=64 * 1024)
    for n in range(50):
        cache.put(MODEL, 1536, f"text {n}", [0.5] * 1536)
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 5
    assert cache.get(MODEL, 1536, "text 49") is not None


def test_a_vector_larger_than_the_cache_is_not_stored() -> None:
    """An entry that alone exceeds max_bytes is skipped, and nothing is evicted for it."""
    cache = EmbeddingCache(max_entries=10, max_bytes=4096)
    cache.put(MODEL, 1, "small", [1.0])
    cache.put(MODEL, 1536, "huge", [1.0] * 1536)
    assert cache.get(MODEL, 1536, "huge") is None
    assert cache.get(MODEL, 1, "small") == [1.0]


@pytest.mark.parametrize(("entries", "size"), [(0, 100), (10, 0)])
def test_bounds_must_be_positive(entries: int, size: int) -> None:
    """A cache without room is a configuration mistake, refused with a clear message."""
    with pytest.raises(ValueError, match="must be at least 1"):
        EmbeddingCache(max_entries=entries, max_bytes=size)


async def test_only_texts_not_cached_reach_the_backend_once_each() -> None:
    """A batch with a cached text and a repeated new one sends the new one once."""
    backend = CountingBackend()
    cached = CachingEmbeddingsBackend(backend, EmbeddingCache(max_entries=10, max_bytes=10**6))
    first = await cached.create_embeddings(["alpha"], model=MODEL, dimensions=4)
    vectors = await cached.create_embeddings(["beta", "alpha", "beta"], model=MODEL, dimensions=4)
    assert backend.requests == [["alpha"], ["beta"]]
    assert vectors[1] == first[0]
    assert vectors[0] == vectors[2] == [4.0, 1.0, 1.0, 1.0]
    vectors[0][0] = 99.0  # callers get their own lists: the cache is not aliased
    assert (await cached.create_embeddings(["beta"], model=MODEL, dimensions=4))[0][0] == 4.0
    assert backend.requests == [["alpha"], ["beta"]]


async def test_an_answer_the_embedder_would_refuse_is_not_cached() -> None:
    """A zero vector is returned (for the Embedder to reject) but asked again next time."""
    backend = CountingBackend(bad={"empty"})
    cached = CachingEmbeddingsBackend(backend, EmbeddingCache(max_entries=10, max_bytes=10**6))
    for _ in range(2):
        assert await cached.create_embeddings(["empty"], model=MODEL, dimensions=4) == [[0.0] * 4]
    assert backend.requests == [["empty"], ["empty"]]


def test_counters_are_emitted_with_the_other_metrics() -> None:
    """Hits and misses appear on the EMF line, as deltas, and are listed in METRIC_NAMES."""
    metrics = MetricsRegistry()
    cache = EmbeddingCache(max_entries=10, max_bytes=10**6, metrics=metrics)
    cache.put(MODEL, 1, "q", [1.0])
    cache.get(MODEL, 1, "q")
    cache.get(MODEL, 1, "other")
    lines: list[str] = []
    EmfEmitter(metrics, environment="test", sink=lines.append, clock=lambda: 1.0).flush()
    (document,) = [parse_emf_line(line) for line in lines]
    assert (document["EmbeddingCacheHits"], document["EmbeddingCacheMisses"]) == (1, 1)
    assert {"EmbeddingCacheHits", "EmbeddingCacheMisses"} <= set(METRIC_NAMES)
