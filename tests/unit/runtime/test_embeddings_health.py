"""EmbeddingsHealth: real calls speak for the endpoint; probes are rare and single-flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from secretswap.testing import ManualClock

from kb_mcp.errors import EmbeddingError
from kb_mcp.runtime.health import EmbeddingsHealth, ObservedBackend


class Backend:
    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        self.calls += 1
        if self.fail:
            raise EmbeddingError("embeddings call failed (APIConnectionError)")
        return [[1.0] for _ in texts]


async def test_a_failing_real_call_degrades_without_a_probe() -> None:
    """After a failed call the verdict is the failure, with no probe while it is fresh."""
    clock = ManualClock()
    health = EmbeddingsHealth(clock=clock)
    backend = Backend()
    observed = ObservedBackend(backend, health)
    backend.fail = True
    with pytest.raises(EmbeddingError):
        await observed.create_embeddings(["x"], model="m", dimensions=None)

    async def probe() -> None:
        raise AssertionError("no probe while a real outcome is fresh")

    ok, reason = await health.check(probe)
    assert not ok
    assert "APIConnectionError" in reason
    assert health.probes == 0


async def test_probes_are_rate_limited_and_single_flight() -> None:
    """Fifty concurrent checks make one probe; the next one only after the interval."""
    clock = ManualClock()
    health = EmbeddingsHealth(clock=clock, fresh_s=30, probe_interval_s=60)
    probes = 0

    async def probe() -> None:
        nonlocal probes
        probes += 1
        await asyncio.sleep(0)

    results = await asyncio.gather(*(health.check(probe) for _ in range(50)))
    assert probes == 1
    assert all(ok for ok, _ in results)
    clock.advance(45)  # stale, but the interval has not passed
    await health.check(probe)
    assert probes == 1
    clock.advance(20)
    await health.check(probe)
    assert probes == 2


class HeldBackend:
    """A backend whose calls wait on a gate (a hung endpoint)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        self.entered.set()
        await self.gate.wait()
        return [[1.0] for _ in texts]


async def test_calls_waiting_past_the_stall_bound_degrade_without_a_probe() -> None:
    """A call in flight `stall_s` with nothing answered: not ok; ok again once it answers."""
    clock = ManualClock()
    health = EmbeddingsHealth(clock=clock, stall_s=5.0)
    health.record(True)
    backend = HeldBackend()
    call = asyncio.create_task(
        ObservedBackend(backend, health).create_embeddings(["x"], model="m", dimensions=None)
    )
    await backend.entered.wait()

    async def probe() -> None:
        raise AssertionError("a stall is known without a probe")

    clock.advance(4.9)
    assert await health.check(probe) == (True, "ok")
    clock.advance(0.1)
    ok, reason = await health.check(probe)
    assert not ok
    assert reason.startswith("embeddings not answering")
    backend.gate.set()
    await call
    assert await health.check(probe) == (True, "ok")


async def test_an_answer_during_a_long_call_means_the_endpoint_answers() -> None:
    """One slow call while others are answered is no stall: the endpoint is answering."""
    clock = ManualClock()
    health = EmbeddingsHealth(clock=clock, stall_s=5.0)
    slow = HeldBackend()
    call = asyncio.create_task(
        ObservedBackend(slow, health).create_embeddings(["x"], model="m", dimensions=None)
    )
    await slow.entered.wait()
    clock.advance(4.0)
    await ObservedBackend(Backend(), health).create_embeddings(["y"], model="m", dimensions=None)
    clock.advance(4.0)
    assert (await health.check(_no_probe))[0]
    slow.gate.set()
    await call


async def test_a_call_given_up_after_the_stall_bound_is_recorded_as_a_failure() -> None:
    """A call cancelled (deadline, client gone) after `stall_s` unanswered: not ok, fresh."""
    clock = ManualClock()
    health = EmbeddingsHealth(clock=clock, stall_s=5.0)
    backend = HeldBackend()
    call = asyncio.create_task(
        ObservedBackend(backend, health).create_embeddings(["x"], model="m", dimensions=None)
    )
    await backend.entered.wait()
    clock.advance(6.0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    ok, reason = await health.check(_no_probe)
    assert not ok
    assert "given up" in reason


async def test_a_probe_that_hangs_is_bounded_by_its_own_timeout() -> None:
    """A probe past `probe_timeout_s` is cut off and reported as not answering."""
    health = EmbeddingsHealth(probe_timeout_s=0.01)

    async def hangs() -> None:
        await asyncio.Event().wait()

    ok, reason = await health.check(hangs)
    assert not ok
    assert reason.startswith("embeddings not answering")


async def _no_probe() -> None:
    raise AssertionError("no probe expected")
