"""EmbeddingsHealth: real calls speak for the endpoint; probes are rare and single-flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kb_mcp.errors import EmbeddingError
from kb_mcp.runtime.health import EmbeddingsHealth, ObservedBackend
from tests.support.clock import FakeClock


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
    clock = FakeClock()
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
    clock = FakeClock()
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
