"""The core contains the unexpected: any exception from an adapter, a recover, a provider
or an observer leaves the old generation serving and the refresher running."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secretswap import HotSwap, HotSwapEvent, Observer, Recover, Refresher, background_group
from secretswap.metrics import MetricsRegistry
from secretswap.testing import FakeResource, FaultyAdapter, MemoryProvider, Refused

from kb_mcp.errors import AuthFailed, KbMcpError, RotationError
from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_openai_key
from tests.support.foreign_errors import any_errors, foreign_errors
from tests.unit.hotswap.conftest import NAME

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _provider() -> MemoryProvider:
    provider = MemoryProvider()
    provider.put(NAME, fake_openai_key())
    return provider


def _swap(
    adapter: FaultyAdapter,
    drains: asyncio.TaskGroup,
    metrics: MetricsRegistry,
    *,
    recover: Recover | None = None,
    observers: tuple[Observer, ...] = (),
) -> HotSwap[OpenAIKeySecret, FakeResource]:
    return HotSwap(
        adapter,
        NAME,
        tasks=drains,
        drain_timeout_s=5.0,
        recover=recover,
        metrics=metrics,
        observers=observers,
    )


def _surfaced(error: Exception) -> type[Exception]:
    """The class a caller sees: a StopIteration leaving a coroutine is a RuntimeError."""
    return RuntimeError if isinstance(error, StopIteration) else type(error)


@EXAMPLES
@given(step=st.sampled_from(["build", "probe"]), error=any_errors())
async def test_any_build_or_probe_error_rejects_the_version_and_the_old_serves(
    captured_logs: CapturedLogs, step: str, error: Exception
) -> None:
    """build/probe raising anything: RotationError naming the step's error class, old serves."""
    provider, adapter, metrics = _provider(), FaultyAdapter(), MetricsRegistry()
    async with background_group() as drains:
        swap = _swap(adapter, drains, metrics)
        first = (await swap.start(await provider.get_secret_json(NAME, OpenAIKeySecret))).resource
        adapter.faults[step] = error
        version = provider.put(NAME, fake_openai_key())
        with pytest.raises(RotationError) as caught:
            await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))
        assert caught.value.version_id == version
        cause = caught.value.__cause__
        assert isinstance(cause, _surfaced(error))
        assert cause is error or cause.__cause__ is error
        if not isinstance(error, KbMcpError):
            assert type(cause).__name__ in str(caught.value)
        assert swap.current.resource is first
        assert all(r.terminated for r in adapter.built if r is not first)
        adapter.faults.clear()
        assert await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))
        await swap.aclose()


@EXAMPLES
@given(probe_error=foreign_errors(), terminate_error=foreign_errors())
async def test_a_terminate_failing_after_a_failed_probe_is_contained(
    captured_logs: CapturedLogs, probe_error: Exception, terminate_error: Exception
) -> None:
    """probe then terminate raise: one RotationError; terminate's failure counted, logged once."""
    provider, adapter, metrics = _provider(), FaultyAdapter(), MetricsRegistry()
    async with background_group() as drains:
        swap = _swap(adapter, drains, metrics)
        first = (await swap.start(await provider.get_secret_json(NAME, OpenAIKeySecret))).resource
        adapter.faults.update(probe=probe_error, terminate=terminate_error)
        provider.put(NAME, fake_openai_key())
        before = len(captured_logs.records)
        with pytest.raises(RotationError):
            await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))
        assert swap.current.resource is first
        failed = [
            e for e in captured_logs.records[before:] if e["event"] == "hotswap.adapter_failed"
        ]
        assert [(e["step"], e["error"]) for e in failed] == [
            ("terminate", _surfaced(terminate_error).__name__)
        ]
        assert metrics.total("RotationFailures") == 1
        adapter.faults.clear()
        await swap.aclose()


@EXAMPLES
@given(error=foreign_errors(), terminate_too=st.booleans())
async def test_a_close_that_raises_ends_in_terminate_and_the_drain_completes(
    captured_logs: CapturedLogs, error: Exception, terminate_too: bool
) -> None:
    """close raising anything (terminate too, maybe): the drain ends, the old one is terminated."""
    provider, adapter, metrics = _provider(), FaultyAdapter(), MetricsRegistry()
    async with background_group() as drains:
        swap = _swap(adapter, drains, metrics)
        old = await swap.start(await provider.get_secret_json(NAME, OpenAIKeySecret))
        adapter.faults["close"] = error
        if terminate_too:
            adapter.faults["terminate"] = error
        provider.put(NAME, fake_openai_key())
        assert await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))
        await old.closed.wait()
        assert old.resource.terminated
        assert swap.draining == 0
        assert metrics.total("RotationFailures") == (2 if terminate_too else 1)
        adapter.faults.clear()
        await swap.aclose()


@EXAMPLES
@given(error=any_errors())
async def test_an_is_auth_failure_that_raises_gives_the_caller_its_own_error(
    captured_logs: CapturedLogs, error: Exception
) -> None:
    """is_auth_failure raising: the operation's own exception reaches the caller, no recovery."""
    provider, adapter, metrics = _provider(), FaultyAdapter(), MetricsRegistry()
    recovered: list[str] = []

    async def recover(name: str, failed: str) -> bool:
        recovered.append(failed)
        return False

    async with background_group() as drains:
        swap = _swap(adapter, drains, metrics, recover=recover)
        await swap.start(await provider.get_secret_json(NAME, OpenAIKeySecret))
        adapter.faults["is_auth_failure"] = error

        async def operation(resource: FakeResource) -> None:
            raise Refused

        with pytest.raises(Refused):
            await swap.run(operation)
        assert recovered == []
        assert metrics.total("RotationFailures") == 1
        adapter.faults.clear()
        await swap.aclose()


@EXAMPLES
@given(error=any_errors())
async def test_a_recover_that_raises_is_an_auth_failure_not_a_crash(
    captured_logs: CapturedLogs, error: Exception
) -> None:
    """recover raising: the caller gets AuthFailed for the refused version, counted once."""
    provider, adapter, metrics = _provider(), FaultyAdapter(), MetricsRegistry()

    async def recover(name: str, failed: str) -> bool:
        raise error

    async with background_group() as drains:
        swap = _swap(adapter, drains, metrics, recover=recover)
        first = await swap.start(await provider.get_secret_json(NAME, OpenAIKeySecret))

        async def operation(resource: FakeResource) -> None:
            raise Refused

        with pytest.raises(AuthFailed) as caught:
            await swap.run(operation)
        assert caught.value.version_id == first.version_id
        assert isinstance(caught.value, KbMcpError)
        assert metrics.total("RotationFailures") == 1
        await swap.aclose()


@EXAMPLES
@given(error=foreign_errors(), kind=st.sampled_from(["detected", "swapped", "closed", "poll"]))
async def test_an_observer_that_raises_stops_nothing(
    captured_logs: CapturedLogs, error: Exception, kind: str
) -> None:
    """An observer raising on any event: the rotation completes, later observers still see it."""
    provider, adapter, metrics = _provider(), FaultyAdapter(), MetricsRegistry()
    seen: list[HotSwapEvent] = []

    def raising(event: HotSwapEvent) -> None:
        if event.kind == kind:
            raise error

    observers = (raising, seen.append)
    before = len(captured_logs.records)
    async with background_group() as drains:
        swap = _swap(adapter, drains, metrics, observers=observers)
        refresher = Refresher(provider, interval_s=300.0, metrics=metrics, observers=observers)
        loaded = await provider.get_secret_json(NAME, OpenAIKeySecret)
        await swap.start(loaded)
        refresher.watch(loaded, swap)
        version = provider.put(NAME, fake_openai_key())
        await refresher.refresh_all()
        assert refresher.in_service(NAME) == version
        await swap.aclose()
    assert {e.kind for e in seen} >= {"poll", "detected", "swapped", "closed"}
    raised = 2 if kind == "closed" else 1  # the rotated-out generation, then at aclose
    assert metrics.total("RotationFailures") == raised
    failed = [e for e in captured_logs.records[before:] if e["event"] == "hotswap.observer_failed"]
    assert [e["error"] for e in failed] == [type(error).__name__] * raised


class _Rounds:
    """An observer: awaitable counts of refresher rounds (`poll`) and swaps."""

    def __init__(self) -> None:
        self.tally: Tally[str] = Tally()
        self._changed = asyncio.Event()

    def __call__(self, event: HotSwapEvent) -> None:
        self.tally[event.kind] += 1
        self._changed.set()

    async def reach(self, kind: str, count: int) -> None:
        while self.tally[kind] < count:
            self._changed.clear()
            await self._changed.wait()


@EXAMPLES
@given(
    step=st.sampled_from(["build", "probe", "close", "terminate", "describe", "provider"]),
    error=foreign_errors(),
)
async def test_the_refresher_lives_on_through_any_error(
    captured_logs: CapturedLogs, step: str, error: Exception
) -> None:
    """A round meeting any error ends; the next runs, a good version swaps; stop ends run()."""
    provider, adapter, metrics = _provider(), FaultyAdapter(), MetricsRegistry()
    rounds = _Rounds()
    async with background_group() as drains:
        swap = _swap(adapter, drains, metrics, observers=(rounds,))
        refresher = Refresher(provider, interval_s=300.0, metrics=metrics, observers=(rounds,))
        loaded = await provider.get_secret_json(NAME, OpenAIKeySecret)
        await swap.start(loaded)
        refresher.watch(loaded, swap)
        stop = asyncio.Event()
        running = asyncio.create_task(refresher.run(stop))
        if step == "provider":
            provider.raise_on_read = error
        else:
            adapter.faults[step] = error
        provider.put(NAME, fake_openai_key())
        refresher.trigger()
        await rounds.reach("poll", 1)
        refresher.trigger()
        await rounds.reach("poll", 2)  # the first round ended and the loop went on
        assert not running.done()
        provider.raise_on_read = None
        adapter.faults.clear()
        version = provider.put(NAME, fake_openai_key())
        refresher.trigger()
        while refresher.in_service(NAME) != version:
            await rounds.reach("poll", rounds.tally["poll"] + 1)
            refresher.trigger()
        stop.set()
        await running
        await swap.aclose()


class _RaisingWatcher:
    """A plain watcher (a value holder, not a HotSwap) that raises `error` on every version."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def apply(self, loaded: object) -> bool:
        raise self.error


@EXAMPLES
@given(error=foreign_errors(), via=st.sampled_from(["poll", "recover"]))
async def test_a_watcher_raising_anything_rejects_the_version_and_nothing_more(
    captured_logs: CapturedLogs, error: Exception, via: str
) -> None:
    """A poll or an auth recovery meeting any watcher error: False, the version is rejected."""
    provider, metrics = _provider(), MetricsRegistry()
    refresher = Refresher(provider, interval_s=300.0, metrics=metrics)
    loaded = await provider.get_secret_json(NAME, OpenAIKeySecret)
    refresher.watch(loaded, _RaisingWatcher(error))
    bad = provider.put(NAME, fake_openai_key())
    if via == "poll":
        assert not await refresher.refresh_one(NAME)
        assert metrics.total("RotationFailures") == 1
    else:
        assert not await refresher.recover(NAME, loaded.version_id)
    (rejected,) = refresher.rejected()
    assert (rejected.version_id, rejected.error) == (bad, _surfaced(error).__name__)
    assert refresher.in_service(NAME) == loaded.version_id
