"""The pieces under `hot_swapped`: the refresher's record of the version in service, the
one auth-failure retry (`HotSwap.leased`), and the events observers count metrics from."""

from __future__ import annotations

import asyncio

import pytest

from secretswap import ApiKeySecret, AuthFailed, HotSwap, HotSwapEvent, Refresher
from secretswap import background_group as drains_group
from secretswap.testing import FakeResource, FaultyAdapter, MemoryProvider, Refused

NAME = "test/api-key"


async def _started(
    provider: MemoryProvider,
    adapter: FaultyAdapter,
    drains: asyncio.TaskGroup,
    events: list[HotSwapEvent],
    *,
    drain_timeout_s: float = 5.0,
) -> tuple[HotSwap[ApiKeySecret, FakeResource], Refresher]:
    refresher = Refresher(provider, interval_s=3600.0, observers=(events.append,))
    swap: HotSwap[ApiKeySecret, FakeResource] = HotSwap(
        adapter,
        NAME,
        tasks=drains,
        kind="test.client",
        drain_timeout_s=drain_timeout_s,
        recover=refresher.recover,
        observers=(events.append,),
    )
    loaded = await provider.get_secret_json(NAME, ApiKeySecret)
    await swap.start(loaded)
    refresher.watch(loaded, swap)
    return swap, refresher


def _provider() -> MemoryProvider:
    provider = MemoryProvider()
    provider.put(NAME, "key-0000")
    return provider


async def test_the_refresher_is_the_record_of_the_version_in_service() -> None:
    """After a rotation the refresher names the new version; the swap has no record of its own."""
    provider, adapter = _provider(), FaultyAdapter()
    events: list[HotSwapEvent] = []
    async with drains_group() as drains:
        swap, refresher = await _started(provider, adapter, drains, events)
        assert refresher.versions_in_service() == {NAME: "v1"}
        provider.put(NAME, "key-0001")
        await refresher.refresh_all()
        assert refresher.in_service(NAME) == "v2"
        assert refresher.versions_in_service() == {NAME: "v2"}
        assert swap.current.version_id == "v2"
        assert not hasattr(swap, "version_id")
        await swap.aclose()


async def test_leased_retries_a_refusal_once_on_the_newer_version() -> None:
    """`leased(op)`: a refused call recovers, runs again on the new resource, and holds it."""
    provider, adapter = _provider(), FaultyAdapter()
    events: list[HotSwapEvent] = []
    async with drains_group() as drains:
        swap, refresher = await _started(provider, adapter, drains, events)
        provider.put(NAME, "key-0001")  # AWSCURRENT moved; the refresher has not polled

        async def connect(resource: FakeResource) -> str:
            if resource.version_id == "v1":
                raise Refused("401")
            return f"connection on {resource.version_id}"

        async with swap.leased(connect) as (generation, connection):
            assert connection == "connection on v2"
            assert generation.users == 1  # held until the block ends
        assert generation.users == 0
        assert refresher.in_service(NAME) == "v2"
        assert [(e.kind, e.version_id) for e in events if e.kind == "recovering"] == [
            ("recovering", "v1")
        ]
        await swap.aclose()


async def test_leased_raises_auth_failed_when_nothing_newer_exists() -> None:
    """A refusal with no newer version: `AuthFailed` naming the version, the refusal as cause."""
    provider, adapter = _provider(), FaultyAdapter()
    events: list[HotSwapEvent] = []
    async with drains_group() as drains:
        swap, _refresher = await _started(provider, adapter, drains, events)

        async def refused(resource: FakeResource) -> str:
            raise Refused("401")

        with pytest.raises(AuthFailed) as caught:
            async with swap.leased(refused):
                pytest.fail("the block must not run")
        assert caught.value.version_id == "v1"
        assert isinstance(caught.value.__cause__, Refused)
        assert swap.current.users == 0
        await swap.aclose()


async def test_an_error_of_the_block_is_not_retried() -> None:
    """Only the operation's refusal is retried: the block's own error passes through once."""
    provider, adapter = _provider(), FaultyAdapter()
    events: list[HotSwapEvent] = []
    async with drains_group() as drains:
        swap, _refresher = await _started(provider, adapter, drains, events)

        async def fine(resource: FakeResource) -> str:
            return resource.version_id

        with pytest.raises(Refused):
            async with swap.leased(fine):
                raise Refused("the block's own")
        assert [e.kind for e in events].count("recovering") == 0
        await swap.aclose()


async def test_a_drain_past_its_timeout_is_an_event() -> None:
    """A close that hangs past the drain timeout: `drain_timeout`, then terminate, then `closed`."""
    provider, adapter = _provider(), FaultyAdapter()
    events: list[HotSwapEvent] = []
    adapter.close_gate = asyncio.Event()  # never set: every close hangs
    async with drains_group() as drains:
        swap, _refresher = await _started(provider, adapter, drains, events, drain_timeout_s=0.01)
        await swap.aclose()
    assert [(e.kind, e.resource) for e in events if e.kind in {"drain_timeout", "closed"}] == [
        ("drain_timeout", "test.client"),
        ("closed", "test.client"),
    ]
    assert adapter.built[0].terminated
