"""`Refresher`: backoff, rollback, duplicate triggers, and single-flight auth recovery."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from secretswap import HotSwapEvent, Refresher
from secretswap.metrics import MetricsRegistry
from secretswap.port import AWSPENDING, LoadedSecret
from secretswap.refresher import MIN_BACKOFF_S, RECOVERY_WINDOW_S
from secretswap.testing import ManualClock, MemoryProvider

from kb_mcp.errors import RotationError
from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.support.fakes import fake_openai_key
from tests.unit.hotswap.conftest import NAME


class Watcher:
    """Records every version offered; refuses the versions in `refuse`; can be slow."""

    def __init__(self) -> None:
        self.offered: list[str] = []
        self.in_service = ""
        self.refuse: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def apply(self, loaded: LoadedSecret[Any]) -> bool:
        assert isinstance(loaded.value, OpenAIKeySecret)  # parsed once, by the watch's model
        self.offered.append(loaded.version_id)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if loaded.version_id in self.refuse:
            raise RotationError("refused", secret_name=NAME, version_id=loaded.version_id)
        if loaded.version_id == self.in_service:
            return False
        self.in_service = loaded.version_id
        return True


async def _watched(
    provider: MemoryProvider, *, offer_pending: bool = False, clock: ManualClock | None = None
) -> tuple[Refresher, Watcher, MetricsRegistry, list[HotSwapEvent]]:
    metrics = MetricsRegistry()
    events: list[HotSwapEvent] = []
    refresher = Refresher(
        provider,
        interval_s=300.0,
        jitter_ratio=0.0,
        metrics=metrics,
        observers=(events.append,),
        clock=clock or ManualClock(),
    )
    watcher = Watcher()
    loaded = await provider.get_secret_json(NAME, OpenAIKeySecret)
    watcher.in_service = loaded.version_id
    refresher.watch(loaded, watcher, offer_pending=offer_pending)
    return refresher, watcher, metrics, events


async def test_backoff_doubles_after_each_failure_and_resets(provider: MemoryProvider) -> None:
    """Failed polls come back after 1, 2, 4 s... capped by the interval; a success resets."""
    refresher, _watcher, _metrics, _events = await _watched(provider)
    assert refresher.next_delay() == 300.0
    provider.failing = True
    delays = []
    for _ in range(10):
        await refresher.refresh_one(NAME)
        delays.append(refresher.next_delay())
    assert delays[:4] == [MIN_BACKOFF_S, 2 * MIN_BACKOFF_S, 4 * MIN_BACKOFF_S, 8 * MIN_BACKOFF_S]
    assert delays[-1] == 300.0
    provider.failing = False
    assert not await refresher.refresh_one(NAME)
    assert refresher.next_delay() == 300.0


def test_jitter_stays_within_its_ratio() -> None:
    """Delays spread over interval +/- 10 %, never beyond."""
    refresher = Refresher(MemoryProvider(), interval_s=100.0, rng=random.Random(7))
    delays = [refresher.next_delay() for _ in range(500)]
    assert 90.0 <= min(delays) < 92.0
    assert 108.0 < max(delays) <= 110.0


async def test_rollback_is_a_rotation_like_any_other(provider: MemoryProvider) -> None:
    """AWSCURRENT moved back to the first version: it is offered and put into service again."""
    refresher, watcher, metrics, events = await _watched(provider)
    original = watcher.in_service
    rotated = provider.put(NAME, fake_openai_key())
    assert await refresher.refresh_one(NAME)
    provider.move_current(NAME, original)
    assert await refresher.refresh_one(NAME)
    assert watcher.offered == [rotated, original]
    assert refresher.in_service(NAME) == original
    assert metrics.total("RotationsDetected") == 2
    assert [e.version_id for e in events if e.kind == "detected"] == [rotated, original]


async def test_duplicate_triggers_apply_a_version_once(provider: MemoryProvider) -> None:
    """Ten concurrent offers of one new version: one apply, nine no-ops."""
    refresher, watcher, _metrics, _events = await _watched(provider)
    provider.put(NAME, fake_openai_key())
    version = await provider.refresh(NAME)
    results = await asyncio.gather(*(refresher.offer(NAME, version) for _ in range(10)))
    assert results.count(True) == 1
    assert watcher.offered == [version.version_id]


async def test_a_malformed_version_is_a_counted_failure(provider: MemoryProvider) -> None:
    """A value its model rejects never reaches a watcher; RotationFailures counts it."""
    refresher, watcher, metrics, _events = await _watched(provider)
    before = watcher.in_service
    provider.put(NAME, "short")
    assert not await refresher.refresh_one(NAME)
    assert watcher.offered == []
    assert refresher.in_service(NAME) == before
    assert metrics.total("RotationFailures") == 1
    assert refresher.next_delay() == MIN_BACKOFF_S


async def test_auth_recovery_is_single_flight(provider: MemoryProvider) -> None:
    """Twenty callers refused at once: one refresh, one apply, every caller told to retry."""
    refresher, watcher, _metrics, events = await _watched(provider)
    failed = watcher.in_service
    new = provider.put(NAME, fake_openai_key())
    provider.gate = asyncio.Event()
    recoveries = [asyncio.create_task(refresher.recover(NAME, failed)) for _ in range(20)]
    await asyncio.sleep(0)
    provider.gate.set()
    assert await asyncio.gather(*recoveries) == [True] * 20
    assert provider.calls.get("refresh") == 1
    assert watcher.offered == [new]
    assert refresher.in_service(NAME) == new
    assert [(e.secret, e.version_id) for e in events if e.kind == "recovering"] == [(NAME, failed)]


async def test_recovery_tries_awscurrent_then_awspending(provider: MemoryProvider) -> None:
    """A refused AWSCURRENT refresh is followed by AWSPENDING, which goes into service."""
    refresher, watcher, _metrics, _events = await _watched(provider, offer_pending=True)
    failed = watcher.in_service
    current = provider.put(NAME, fake_openai_key())
    pending = provider.put(NAME, fake_openai_key(), stages=(AWSPENDING,))
    watcher.refuse.add(current)
    assert await refresher.recover(NAME, failed)
    assert watcher.offered == [current, pending]
    assert refresher.in_service(NAME) == pending


async def test_recovery_without_pending_ignores_awspending(provider: MemoryProvider) -> None:
    """A watch without `offer_pending` (an API key) never reads AWSPENDING."""
    refresher, watcher, _metrics, _events = await _watched(provider)
    provider.put(NAME, fake_openai_key(), stages=(AWSPENDING,))
    assert not await refresher.recover(NAME, watcher.in_service)
    assert watcher.offered == []
    assert "stage" not in provider.calls


async def test_a_fruitless_recovery_fails_fast_within_its_window(
    provider: MemoryProvider,
) -> None:
    """Nothing newer: False; further failures of that version within the window skip the API."""
    clock = ManualClock()
    refresher, watcher, _metrics, events = await _watched(provider, offer_pending=True, clock=clock)
    failed = watcher.in_service
    assert not await refresher.recover(NAME, failed)
    calls = dict(provider.calls)
    clock.advance(RECOVERY_WINDOW_S / 2)
    assert not await refresher.recover(NAME, failed)
    assert provider.calls == calls
    clock.advance(RECOVERY_WINDOW_S)
    assert not await refresher.recover(NAME, failed)
    assert provider.calls["refresh"] == calls["refresh"] + 1
    assert [e.kind for e in events].count("recovering") == 2


async def test_a_version_already_replaced_needs_no_recovery(provider: MemoryProvider) -> None:
    """A caller refused on a version the refresher already replaced just retries."""
    refresher, watcher, _metrics, _events = await _watched(provider)
    failed = watcher.in_service
    provider.put(NAME, fake_openai_key())
    assert await refresher.refresh_one(NAME)
    calls = dict(provider.calls)
    assert await refresher.recover(NAME, failed)
    assert provider.calls == calls


async def test_run_polls_on_trigger_and_stops_promptly(provider: MemoryProvider) -> None:
    """trigger() wakes the loop long before the interval; stop cancels a round in flight."""
    refresher, watcher, _metrics, events = await _watched(provider)
    stop = asyncio.Event()
    new = provider.put(NAME, fake_openai_key())
    watcher.gate = asyncio.Event()
    async with asyncio.timeout(5):
        async with asyncio.TaskGroup() as group:
            group.create_task(refresher.run(stop))
            refresher.trigger()
            await watcher.entered.wait()
            assert watcher.offered == [new]
            stop.set()  # the apply is blocked on its gate: the stop must not wait for it
    assert [e.kind for e in events] == ["poll", "detected"]
    assert refresher.in_service(NAME) != new


@pytest.mark.parametrize("ratio", [0.0, 0.1])
def test_no_failures_means_the_plain_interval(ratio: float) -> None:
    """Without failures the delay is the interval (times jitter)."""
    refresher = Refresher(MemoryProvider(), interval_s=30.0, jitter_ratio=ratio)
    assert 30.0 * (1 - ratio) <= refresher.next_delay() <= 30.0 * (1 + ratio)


async def test_a_rejected_version_is_reported_until_a_version_goes_into_service(
    provider: MemoryProvider,
) -> None:
    """rejected(): secret, version and error classes of the refused version; cleared after."""
    refresher, watcher, _metrics, _events = await _watched(provider)
    bad = provider.put(NAME, fake_openai_key())
    watcher.refuse.add(bad)
    assert not await refresher.refresh_one(NAME)
    (rejected,) = refresher.rejected()
    assert (rejected.secret, rejected.version_id, rejected.error) == (NAME, bad, "RotationError")
    good = provider.put(NAME, fake_openai_key())
    assert await refresher.refresh_one(NAME)
    assert refresher.in_service(NAME) == good
    assert refresher.rejected() == []


async def test_a_rollback_to_the_version_in_service_clears_the_rejection(
    provider: MemoryProvider,
) -> None:
    """AWSCURRENT moved back to the serving version: nothing is rejected any more."""
    refresher, watcher, _metrics, _events = await _watched(provider)
    serving = refresher.in_service(NAME)
    bad = provider.put(NAME, fake_openai_key())
    watcher.refuse.add(bad)
    assert not await refresher.refresh_one(NAME)
    assert refresher.rejected()
    provider.move_current(NAME, serving)
    assert not await refresher.refresh_one(NAME)
    assert refresher.rejected() == []
