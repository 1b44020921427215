"""`SecretCache`: TTL on an injected clock, single-flight, stale-on-error, forced refresh."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr
from secretswap.cache import SecretCache
from secretswap.metrics import MetricsRegistry
from secretswap.port import SecretVersion
from secretswap.testing import ManualClock

from kb_mcp.errors import ResourceClosedError, SecretsUnavailableError
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_openai_key

NAME = "kb-mcp/test/openai-api-key"


@dataclass
class Backend:
    """A fetch function standing in for Secrets Manager: counts calls, can fail or block."""

    values: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    failing: bool = False
    gate: asyncio.Event | None = None

    def put(self, name: str, value: str) -> None:
        self.values[name] = value
        self.versions[name] = self.versions.get(name, 0) + 1

    def version_id(self, name: str) -> str:
        return f"v{self.versions[name]}"

    async def fetch(self, name: str) -> SecretVersion:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise SecretsUnavailableError(
                f"secrets manager unreachable reading secret {name}", secret_name=name
            )
        return SecretVersion(
            name=name, value=SecretStr(self.values[name]), version_id=self.version_id(name)
        )


@pytest.fixture
def clock() -> ManualClock:
    """A fake monotonic clock."""
    return ManualClock()


@pytest.fixture
def backend() -> Backend:
    """A backend holding one OpenAI key at version v1."""
    store = Backend()
    store.put(NAME, fake_openai_key())
    return store


@pytest.fixture
def metrics() -> MetricsRegistry:
    """A fresh metrics registry."""
    return MetricsRegistry()


@pytest.fixture
def cache(backend: Backend, clock: ManualClock, metrics: MetricsRegistry) -> SecretCache:
    """A cache with a 300 s TTL on the fake clock."""
    return SecretCache(backend.fetch, ttl_s=300.0, metrics=metrics, clock=clock)


def _count(metrics: MetricsRegistry, name: str) -> int:
    return metrics.total(name)


async def test_hit_within_ttl_and_one_fetch_after(
    cache: SecretCache, backend: Backend, clock: ManualClock, metrics: MetricsRegistry
) -> None:
    """Reads within the TTL are hits; the first read at or after the TTL fetches once."""
    first = await cache.get(NAME)
    clock.advance(299.999)
    assert await cache.get(NAME) is first
    assert backend.calls == 1
    clock.advance(0.001)
    await cache.get(NAME)
    await cache.get(NAME)
    assert backend.calls == 2
    assert (_count(metrics, "CacheHits"), _count(metrics, "CacheMisses")) == (2, 2)


async def test_new_version_seen_after_ttl(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """A rotated value is served once the TTL expires, not before."""
    assert (await cache.get(NAME)).version_id == "v1"
    backend.put(NAME, fake_openai_key())
    clock.advance(100)
    assert (await cache.get(NAME)).version_id == "v1"
    clock.advance(200)
    assert (await cache.get(NAME)).version_id == "v2"


async def test_cold_readers_share_one_fetch(cache: SecretCache, backend: Backend) -> None:
    """1,000 concurrent readers of a cold entry cause one fetch and all get its result."""
    backend.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.get(NAME)) for _ in range(1000)]
    await asyncio.sleep(0)  # every reader reaches the shared fetch before it is released
    backend.gate.set()
    results = await asyncio.gather(*readers)
    assert backend.calls == 1
    assert {r.version_id for r in results} == {"v1"}


async def test_expired_entry_readers_share_one_fetch(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """Concurrent readers of an expired entry cause one fetch too."""
    await cache.get(NAME)
    clock.advance(300)
    backend.put(NAME, fake_openai_key())
    backend.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.get(NAME)) for _ in range(200)]
    await asyncio.sleep(0)
    backend.gate.set()
    assert {r.version_id for r in await asyncio.gather(*readers)} == {"v2"}
    assert backend.calls == 2


async def test_cold_failure_raises_to_every_reader(cache: SecretCache, backend: Backend) -> None:
    """With nothing cached, a failed fetch is raised (once fetched, to all waiting readers)."""
    backend.failing = True
    results = await asyncio.gather(*(cache.get(NAME) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, SecretsUnavailableError) for r in results)
    assert backend.calls == 1
    assert cache.status() == []


async def test_stale_on_error_serves_old_value_and_reports_it(
    cache: SecretCache,
    backend: Backend,
    clock: ManualClock,
    metrics: MetricsRegistry,
    captured_logs: CapturedLogs,
) -> None:
    """A failed refresh serves the last good value, logs a warning, counts, and shows stale."""
    good = await cache.get(NAME)
    backend.failing = True
    clock.advance(300)
    assert await cache.get(NAME) is good
    (status,) = cache.status()
    assert status.stale
    assert status.last_error == "SecretsUnavailableError"
    assert status.version_id == "v1"
    assert _count(metrics, "RefreshErrors") == 1
    (warning,) = captured_logs.events("secret.refresh_failed")
    assert warning["level"] == "warning"
    assert warning["secret"] == NAME
    clock.advance(12)
    assert cache.status()[0].stale_for_s == 12


async def test_outage_does_not_turn_reads_into_fetches(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """After a failed refresh the next attempt waits `error_retry_s` (30 s by default)."""
    await cache.get(NAME)
    backend.failing = True
    clock.advance(300)
    await cache.get(NAME)
    for _ in range(100):
        await cache.get(NAME)
    assert backend.calls == 2
    clock.advance(30)
    await cache.get(NAME)
    assert backend.calls == 3


async def test_recovery_clears_staleness(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """The first successful fetch after an outage replaces the entry and clears `stale`."""
    await cache.get(NAME)
    backend.failing = True
    clock.advance(300)
    await cache.get(NAME)
    backend.failing = False
    backend.put(NAME, fake_openai_key())
    clock.advance(30)
    assert (await cache.get(NAME)).version_id == "v2"
    (status,) = cache.status()
    assert (status.stale, status.last_error, status.age_s) == (False, None, 0)


async def test_refresh_raises_but_keeps_value(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """A forced refresh that fails raises; the cached value keeps being served."""
    good = await cache.get(NAME)
    backend.failing = True
    with pytest.raises(SecretsUnavailableError):
        await cache.refresh(NAME)
    assert await cache.get(NAME) is good
    assert [(s.name, s.version_id) for s in cache.status()] == [(NAME, good.version_id)]


async def test_refresh_single_flight_and_seen_version(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """100 concurrent refreshes make one fetch; an older `seen_version` gets the new one free."""
    await cache.get(NAME)
    backend.put(NAME, fake_openai_key())
    clock.advance(5)
    backend.gate = asyncio.Event()
    callers = [asyncio.create_task(cache.refresh(NAME, seen_version="v1")) for _ in range(100)]
    await asyncio.sleep(0)
    backend.gate.set()
    assert {v.version_id for v in await asyncio.gather(*callers)} == {"v2"}
    assert backend.calls == 2
    late = await cache.refresh(NAME, seen_version="v1")
    assert late.version_id == "v2"
    assert backend.calls == 2


async def test_repeated_forced_refresh_within_a_second_is_not_repeated(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """A second forced refresh for the same version within a second reuses the first."""
    await cache.get(NAME)
    assert (await cache.refresh(NAME, seen_version="v1")).version_id == "v1"
    assert backend.calls == 2
    clock.advance(0.5)
    assert (await cache.refresh(NAME, seen_version="v1")).version_id == "v1"
    assert backend.calls == 2
    clock.advance(0.5)
    await cache.refresh(NAME, seen_version="v1")
    assert backend.calls == 3
    await cache.refresh(NAME)
    assert backend.calls == 4


async def test_get_fresh_never_fetches(
    cache: SecretCache, backend: Backend, clock: ManualClock, metrics: MetricsRegistry
) -> None:
    """`get_fresh` gives a fresh entry (a hit) and None when cold or expired; never fetches."""
    assert cache.get_fresh(NAME) is None
    version = await cache.get(NAME)
    assert cache.get_fresh(NAME) is version
    clock.advance(300)
    assert cache.get_fresh(NAME) is None
    assert backend.calls == 1
    assert (_count(metrics, "CacheHits"), _count(metrics, "CacheMisses")) == (1, 1)


async def test_invalidate_forgets_one_or_all(cache: SecretCache, backend: Backend) -> None:
    """`invalidate(name)` and `invalidate()` make the next read fetch."""
    other = "kb-mcp/test/other"
    backend.put(other, fake_openai_key())
    await cache.get(NAME)
    await cache.get(other)
    cache.invalidate(NAME)
    assert [s.name for s in cache.status()] == [other]
    await cache.get(NAME)
    assert backend.calls == 3
    cache.invalidate()
    assert cache.status() == []
    await cache.get(other)
    assert backend.calls == 4


async def test_status_names_versions_never_values(
    cache: SecretCache, backend: Backend, clock: ManualClock
) -> None:
    """`status()` gives version and age; neither it nor its repr holds the value."""
    await cache.get(NAME)
    clock.advance(42)
    (status,) = cache.status()
    assert (status.name, status.version_id, status.age_s, status.stale) == (NAME, "v1", 42, False)
    assert backend.values[NAME] not in repr(status)


async def test_aclose_cancels_inflight_and_refuses_use(
    cache: SecretCache, backend: Backend
) -> None:
    """Closing cancels a fetch in flight; any later read raises ResourceClosedError."""
    backend.gate = asyncio.Event()
    reader = asyncio.create_task(cache.get(NAME))
    await asyncio.sleep(0)
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await reader
    with pytest.raises(ResourceClosedError):
        await cache.get(NAME)


async def test_cancelled_reader_does_not_cancel_the_shared_fetch(
    cache: SecretCache, backend: Backend
) -> None:
    """One reader giving up does not cancel the fetch other readers wait on."""
    backend.gate = asyncio.Event()
    quitter = asyncio.create_task(cache.get(NAME))
    stayer = asyncio.create_task(cache.get(NAME))
    await asyncio.sleep(0)
    quitter.cancel()
    backend.gate.set()
    assert (await stayer).version_id == "v1"
    assert backend.calls == 1


@pytest.mark.parametrize("ttl", [0.0, -1.0])
def test_ttl_must_be_positive(backend: Backend, ttl: float) -> None:
    """A non-positive TTL is refused."""
    with pytest.raises(ValueError, match="ttl_s must be positive"):
        SecretCache(backend.fetch, ttl_s=ttl, metrics=MetricsRegistry())
