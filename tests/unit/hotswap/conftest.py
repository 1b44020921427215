"""Fixtures for the hot-swap core's tests, over the library's public doubles
(`secretswap.testing`: `MemoryProvider`, `FaultyAdapter`, `FakeResource`, `Refused`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from secretswap import HotSwap, background_group
from secretswap.testing import FakeResource, FaultyAdapter, MemoryProvider

from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.support.fakes import fake_openai_key

NAME = "kb-mcp/test/api-key"


@pytest.fixture
def provider() -> MemoryProvider:
    memory = MemoryProvider()
    memory.put(NAME, fake_openai_key())
    return memory


@pytest.fixture
def adapter() -> FaultyAdapter:
    return FaultyAdapter()


@pytest.fixture
async def drains() -> AsyncIterator[asyncio.TaskGroup]:
    async with background_group() as group:
        yield group


def new_swap(
    adapter: FaultyAdapter, drains: asyncio.TaskGroup, *, drain_timeout_s: float = 5.0
) -> HotSwap[OpenAIKeySecret, FakeResource]:
    return HotSwap(adapter, NAME, tasks=drains, drain_timeout_s=drain_timeout_s)
