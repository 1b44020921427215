"""`hot_swapped()`: calls through rotations fail none, a refusal recovers, a foreign error
in a probe keeps the resource in service, exit closes everything."""

from __future__ import annotations

import asyncio

import pytest

from secretswap import ApiKeySecret, AuthFailed, HotSwapEvent, hot_swapped
from secretswap.testing import FakeResource, FaultyAdapter, MemoryProvider, Refused

NAME = "test/api-key"


class _Swaps:
    """An observer: awaitable count of swaps."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def __call__(self, event: HotSwapEvent) -> None:
        if event.kind == "swapped":
            self.count += 1
            self._changed.set()

    async def reach(self, count: int) -> None:
        while self.count < count:
            self._changed.clear()
            await self._changed.wait()


def _provider() -> MemoryProvider:
    provider = MemoryProvider()
    provider.put(NAME, "key-0000")
    return provider


async def test_calls_through_rotations_fail_none_and_old_resources_close() -> None:
    """Workers calling while five versions rotate in: every call succeeds; all are closed."""
    provider, adapter, swaps = _provider(), FaultyAdapter(), _Swaps()
    failures: list[BaseException] = []
    calls = 0
    async with hot_swapped(adapter, NAME, ApiKeySecret, provider, observers=(swaps,)) as handle:
        stop = asyncio.Event()

        async def use(resource: FakeResource) -> str:
            await asyncio.sleep(0)  # not a wait: the call holds its resource across a yield
            assert not resource.closed
            return resource.version_id

        async def worker() -> None:
            nonlocal calls
            while not stop.is_set():
                try:
                    await handle.run(use)
                except Exception as exc:  # every failure is recorded
                    failures.append(exc)
                calls += 1

        workers = [asyncio.create_task(worker()) for _ in range(4)]
        for n in range(1, 6):
            version = provider.put(NAME, f"key-{n}{n}{n}{n}")
            handle.refresh()
            await swaps.reach(n)
            assert handle.version_id == version
        stop.set()
        await asyncio.gather(*workers)
    assert failures == []
    assert calls > 0
    assert len(adapter.built) == 6
    assert all(r.closed for r in adapter.built)


async def test_a_refused_call_recovers_on_the_newest_version_once() -> None:
    """A refusal reads the secret now, swaps, retries; with nothing newer it is AuthFailed."""
    provider, adapter = _provider(), FaultyAdapter()
    async with hot_swapped(adapter, NAME, ApiKeySecret, provider) as handle:
        first = handle.resource

        async def refused_on_first(resource: FakeResource) -> str:
            if resource is first:
                raise Refused
            return resource.version_id

        newer = provider.put(NAME, "key-1111")
        assert await handle.run(refused_on_first) == newer

        async def always_refused(resource: FakeResource) -> None:
            raise Refused

        with pytest.raises(AuthFailed):
            await handle.run(always_refused)


class ConnectError(Exception):
    """An HTTP client's error class, unknown to secretswap."""


async def test_a_foreign_probe_error_keeps_the_resource_in_service() -> None:
    """The new version's probe raises a foreign error: old serves, the next good one swaps."""
    provider, adapter, swaps = _provider(), FaultyAdapter(), _Swaps()
    async with hot_swapped(adapter, NAME, ApiKeySecret, provider, observers=(swaps,)) as handle:
        first = handle.resource
        adapter.faults["probe"] = ConnectError("secret-looking detail")
        provider.put(NAME, "key-1111")
        await handle.refresher.refresh_all()
        assert handle.resource is first
        assert handle.refresher.rejected()[0].cause == "ConnectError"
        adapter.faults.clear()
        good = provider.put(NAME, "key-2222")
        handle.refresh()
        await swaps.reach(1)
        assert handle.version_id == good
    assert first.closed
