"""Doubles for the hot-swap core: an in-memory provider and a resource adapter that records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from kb_mcp.errors import DatabaseAuthError, DatabaseUnavailableError
from kb_mcp.hotswap import HotSwap, SwapEvents, background_group
from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.support.fakes import fake_openai_key
from tests.support.memory_provider import MemoryProvider

NAME = "kb-mcp/test/api-key"


class Refused(Exception):
    """What the fake service raises for refused credentials (like 28P01 or 401)."""


@dataclass(eq=False)
class Resource:
    """A fake client built from one key version."""

    version_id: str
    closed: bool = False
    terminated: bool = False


@dataclass
class RecordingAdapter:
    """Builds `Resource`s; can fail, hang, or refuse, and records what happened.

    `faults` maps a method name (build, probe, close, terminate, is_auth_failure,
    describe) to the exception it raises, whatever its class."""

    events: ClassVar[SwapEvents] = SwapEvents("test.resource")
    built: list[Resource] = field(default_factory=list)
    fail_build: bool = False
    fail_probe: bool = False
    build_gate: asyncio.Event | None = None
    close_hangs: bool = False
    faults: dict[str, Exception] = field(default_factory=dict)

    def _fault(self, method: str) -> None:
        fault = self.faults.get(method)
        if fault is not None:
            raise fault

    async def build(self, value: OpenAIKeySecret, version_id: str) -> Resource:
        if self.build_gate is not None:
            await self.build_gate.wait()
        self._fault("build")
        if self.fail_build:
            raise DatabaseAuthError(f"refused version {version_id}")
        resource = Resource(version_id)
        self.built.append(resource)
        return resource

    async def probe(self, resource: Resource, version_id: str) -> None:
        self._fault("probe")
        if self.fail_probe:
            raise DatabaseUnavailableError(f"probe of {version_id} failed")

    async def close(self, resource: Resource) -> None:
        if self.close_hangs:
            await asyncio.Event().wait()
        self._fault("close")
        resource.closed = True

    async def terminate(self, resource: Resource) -> None:
        resource.terminated = True
        self._fault("terminate")

    def is_auth_failure(self, exc: BaseException) -> bool:
        self._fault("is_auth_failure")
        return isinstance(exc, Refused)

    def describe(self, resource: Resource) -> dict[str, object]:
        self._fault("describe")
        return {}


@pytest.fixture
def provider() -> MemoryProvider:
    memory = MemoryProvider()
    memory.put(NAME, fake_openai_key())
    return memory


@pytest.fixture
def adapter() -> RecordingAdapter:
    return RecordingAdapter()


@pytest.fixture
async def drains() -> AsyncIterator[asyncio.TaskGroup]:
    async with background_group() as group:
        yield group


def new_swap(
    adapter: RecordingAdapter, drains: asyncio.TaskGroup, *, drain_timeout_s: float = 5.0
) -> HotSwap[OpenAIKeySecret, Resource]:
    return HotSwap(adapter, NAME, tasks=drains, drain_timeout_s=drain_timeout_s)
