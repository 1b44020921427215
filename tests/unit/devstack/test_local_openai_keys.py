"""`AcceptedKeys`: which keys the local endpoint accepts, and when it re-reads them."""

from __future__ import annotations

import asyncio
import threading

from kb_mcp.devstack.local_openai import AcceptedKeys


class _Store:
    """A key loader whose answers the test changes, counting its reads."""

    def __init__(self, *keys: str) -> None:
        self.keys = list(keys)
        self.reads = 0
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> list[str]:
        self.entered.set()
        self.gate.wait(5.0)
        self.reads += 1
        return list(self.keys)


async def test_an_unknown_key_is_accepted_once_the_store_holds_it() -> None:
    """A miss re-reads the store: a key put there since the last read is accepted."""
    store = _Store("key-one-000000000000000")
    keys = AcceptedKeys(loader=store)
    assert await keys.check("key-one-000000000000000")
    store.keys.append("key-two-000000000000000")
    assert await keys.check("key-two-000000000000000")
    assert not await keys.check("never-stored-0000000000")
    assert store.reads == 3


async def test_concurrent_misses_share_one_read() -> None:
    """Misses that arrive while a read runs wait for it instead of starting their own."""
    store = _Store("key-one-000000000000000")
    keys = AcceptedKeys(loader=store)
    store.gate.clear()
    checks = [asyncio.create_task(keys.check("key-one-000000000000000")) for _ in range(5)]
    await asyncio.to_thread(store.entered.wait, 5.0)  # the first read runs; the rest queue
    store.gate.set()
    assert await asyncio.gather(*checks) == [True] * 5
    assert store.reads == 1


async def test_a_retired_key_is_refused_after_the_loaded_set_ages() -> None:
    """A key no longer in the store stops working once the loaded keys are max_age_s old."""
    store = _Store("old-key-000000000000000")
    keys = AcceptedKeys(loader=store, max_age_s=0.0)
    assert await keys.check("old-key-000000000000000")
    store.keys = ["new-key-000000000000000"]
    assert not await keys.check("old-key-000000000000000")
    assert await keys.check("new-key-000000000000000")


async def test_fixed_keys_need_no_store() -> None:
    """Keys given at start are accepted without a loader; revoked ones are refused."""
    keys = AcceptedKeys(["fixed-key-0000000000000"])
    assert await keys.check("fixed-key-0000000000000")
    keys.revoke("fixed-key-0000000000000")
    assert not await keys.check("fixed-key-0000000000000")
