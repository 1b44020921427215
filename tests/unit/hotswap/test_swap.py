"""`HotSwap`: swap under occupancy, bounded drain, terminate, close during rotation, retry."""

from __future__ import annotations

import asyncio

import pytest
from secretswap import AuthFailed, HotSwap, HotSwapEvent
from secretswap.testing import FakeResource, FaultyAdapter, MemoryProvider, Refused

from kb_mcp.errors import (
    DatabaseAuthError,
    DatabaseUnavailableError,
    ResourceClosedError,
    RotationError,
)
from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.support.fakes import fake_openai_key
from tests.unit.hotswap.conftest import NAME, new_swap


async def _started(
    provider: MemoryProvider, swap: HotSwap[OpenAIKeySecret, FakeResource]
) -> FakeResource:
    generation = await swap.start(await provider.get_secret_json(NAME, OpenAIKeySecret))
    return generation.resource


def _state(resource: FakeResource) -> str:
    if resource.terminated:
        return "terminated"
    return "closed" if resource.closed else "open"


async def test_swap_under_occupancy_closes_the_old_generation_only_when_idle(
    provider: MemoryProvider, adapter: FaultyAdapter, drains: asyncio.TaskGroup
) -> None:
    """A caller holding the old generation keeps it open; it closes once that caller leaves."""
    swap = new_swap(adapter, drains)
    first = await _started(provider, swap)
    async with swap.lease() as held:
        provider.put(NAME, fake_openai_key())
        assert await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))
        assert swap.current.resource is not first
        await asyncio.sleep(0)  # let the drain start: it must wait for us
        assert swap.draining == 1
        assert _state(first) == "open"
        assert held.resource is first
    await held.closed.wait()
    assert _state(first) == "closed"
    assert swap.draining == 0
    await swap.aclose()
    assert all(r.closed for r in adapter.built)


async def test_drain_timeout_terminates_the_old_generation(
    provider: MemoryProvider, adapter: FaultyAdapter, drains: asyncio.TaskGroup
) -> None:
    """Users left past the drain timeout: the old generation is terminated, not closed."""
    swap = new_swap(adapter, drains, drain_timeout_s=0.01)
    first = await _started(provider, swap)
    async with swap.lease() as held:
        provider.put(NAME, fake_openai_key())
        assert await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))
        await held.closed.wait()
        assert _state(first) == "terminated"
    await swap.aclose()


async def test_a_hanging_close_is_terminated(
    provider: MemoryProvider, adapter: FaultyAdapter, drains: asyncio.TaskGroup
) -> None:
    """A close that does not finish within the drain timeout ends in terminate."""
    swap = new_swap(adapter, drains, drain_timeout_s=0.01)
    first = await _started(provider, swap)
    adapter.close_gate = asyncio.Event()  # never set: the close hangs
    await swap.aclose()
    assert first.terminated


async def test_close_during_rotation_discards_the_new_generation(
    provider: MemoryProvider, adapter: FaultyAdapter, drains: asyncio.TaskGroup
) -> None:
    """aclose() while a build is in flight: the rotation fails closed, nothing stays open."""
    swap = new_swap(adapter, drains)
    first = await _started(provider, swap)
    adapter.build_gate = asyncio.Event()
    provider.put(NAME, fake_openai_key())
    loaded = await provider.get_secret_json(NAME, OpenAIKeySecret)
    rotation = asyncio.create_task(swap.apply(loaded))
    await asyncio.sleep(0)
    closing = asyncio.create_task(swap.aclose())
    await asyncio.sleep(0)
    adapter.build_gate.set()
    with pytest.raises(ResourceClosedError):
        await rotation
    await closing
    (_, second) = adapter.built
    assert _state(first) == "closed"
    assert _state(second) == "terminated"
    with pytest.raises(ResourceClosedError):
        swap.current  # noqa: B018 - the property raises once closed


@pytest.mark.parametrize("failure", ["build", "probe"])
async def test_a_rejected_version_leaves_the_old_generation_serving(
    provider: MemoryProvider, adapter: FaultyAdapter, drains: asyncio.TaskGroup, failure: str
) -> None:
    """Build or probe failing: RotationError naming the version; the new resource is closed."""
    swap = new_swap(adapter, drains)
    first = await _started(provider, swap)
    refusals = {
        "build": DatabaseAuthError("refused the new version"),
        "probe": DatabaseUnavailableError("probe of the new version failed"),
    }
    adapter.faults[failure] = refusals[failure]
    version = provider.put(NAME, fake_openai_key())
    with pytest.raises(RotationError) as caught:
        await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))
    assert caught.value.version_id == version
    assert swap.current.resource is first
    assert all(r.terminated for r in adapter.built if r is not first)
    await swap.aclose()


async def test_auth_failure_recovers_and_retries_once(
    provider: MemoryProvider, adapter: FaultyAdapter, drains: asyncio.TaskGroup
) -> None:
    """run(): a refusal asks recover(), which swaps; the operation runs again on the new one."""
    seen: list[str] = []
    events: list[HotSwapEvent] = []

    async def recover(name: str, failed: str) -> bool:
        provider.put(NAME, fake_openai_key())
        return await swap.apply(await provider.get_secret_json(NAME, OpenAIKeySecret))

    swap: HotSwap[OpenAIKeySecret, FakeResource] = HotSwap(
        adapter, NAME, tasks=drains, recover=recover, observers=(events.append,)
    )
    first = await _started(provider, swap)

    async def operation(resource: FakeResource) -> str:
        seen.append(resource.version_id)
        if resource is first:
            raise Refused
        return resource.version_id

    result = await swap.run(operation)
    assert seen == [first.version_id, result]
    assert [e.kind for e in events if e.kind == "swapped"] == ["swapped"]
    await swap.aclose()


async def test_auth_failure_without_a_newer_version_is_raised(
    provider: MemoryProvider, adapter: FaultyAdapter, drains: asyncio.TaskGroup
) -> None:
    """recover() finds nothing: AuthFailed carrying the refused generation, no retry."""
    calls: list[str] = []

    async def recover(name: str, failed: str) -> bool:
        calls.append(failed)
        return False

    swap: HotSwap[OpenAIKeySecret, FakeResource] = HotSwap(
        adapter, NAME, tasks=drains, recover=recover
    )
    first = await _started(provider, swap)

    async def refused(resource: FakeResource) -> None:
        raise Refused

    with pytest.raises(AuthFailed) as caught:
        await swap.run(refused)
    assert caught.value.generation.resource is first
    assert isinstance(caught.value.__cause__, Refused)
    assert calls == [first.version_id]
    await swap.aclose()
