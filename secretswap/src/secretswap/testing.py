"""Test doubles for code built on secretswap, used by secretswap's own tests (and applications').

    MemoryProvider   a `SecretsProvider` in memory: versions put by hand, with stages
                     (AWSCURRENT, AWSPENDING, AWSPREVIOUS); reads counted; a read can be made
                     to fail (`failing`), raise anything (`raise_on_read`) or wait (`gate`)
    ManualClock      a monotonic clock moved by hand (`advance`), for TTLs and windows
    FaultyAdapter    a `ResourceAdapter` building `FakeResource`s that fails on demand: any
                     method raises what `faults` maps it to; `is_auth_failure` says yes to
                     `Refused`; `build_gate` holds builds, `close_gate` holds closes (a close
                     that hangs until the test lets it go, or forever)

No cache and no TTL in `MemoryProvider`: `get_secret` and `refresh` both read AWSCURRENT.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pydantic import SecretStr

from secretswap.errors import SecretNotFoundError, SecretsUnavailableError
from secretswap.port import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    CacheEntryStatus,
    LoadedSecret,
    M,
    SecretVersion,
)
from secretswap.schemas import SecretModel, parse_secret

__all__ = ["FakeResource", "FaultyAdapter", "ManualClock", "MemoryProvider", "Refused"]


@dataclass
class MemoryProvider:
    """Secrets in a dict; `calls` counts reads by kind ("current", "refresh", "stage")."""

    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    stages: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    failing: bool = False
    raise_on_read: Exception | None = None
    """When set, reads raise it (a provider's foreign error)."""
    gate: asyncio.Event | None = None
    """When set, reads wait for it (to hold a refresh in flight)."""
    _counter: int = 0

    @property
    def source(self) -> str:
        return "memory"

    def put(self, name: str, value: str, *, stages: tuple[str, ...] = (AWSCURRENT,)) -> str:
        """Store a new version; AWSCURRENT moves the old current to AWSPREVIOUS."""
        self._counter += 1
        version_id = f"v{self._counter}"
        self.versions.setdefault(name, {})[version_id] = value
        staged = self.stages.setdefault(name, {})
        if AWSCURRENT in stages and AWSCURRENT in staged:
            staged[AWSPREVIOUS] = staged[AWSCURRENT]
        for stage in stages:
            staged[stage] = version_id
        return version_id

    def move_current(self, name: str, version_id: str) -> None:
        staged = self.stages[name]
        staged[AWSPREVIOUS] = staged[AWSCURRENT]
        staged[AWSCURRENT] = version_id
        if staged.get(AWSPENDING) == version_id:
            del staged[AWSPENDING]

    async def _read(self, kind: str, name: str, stage: str) -> SecretVersion:
        self.calls[kind] = self.calls.get(kind, 0) + 1
        if self.gate is not None:
            await self.gate.wait()
        if self.raise_on_read is not None:
            raise self.raise_on_read
        if self.failing:
            raise SecretsUnavailableError(f"memory unreachable reading {name}", secret_name=name)
        version_id = self.stages.get(name, {}).get(stage)
        if version_id is None:
            raise SecretNotFoundError(f"secret {name} has no {stage} version", secret_name=name)
        staged = tuple(s for s, v in self.stages[name].items() if v == version_id)
        value = SecretStr(self.versions[name][version_id])
        return SecretVersion(name=name, value=value, version_id=version_id, stages=staged)

    async def get_secret(self, name: str) -> SecretVersion:
        return await self._read("current", name, AWSCURRENT)

    async def get_secret_json(self, name: str, model: type[M]) -> LoadedSecret[M]:
        version = await self.get_secret(name)
        value = parse_secret(model, version.value.get_secret_value(), secret_name=name)
        return LoadedSecret(value=value, version=version)

    async def refresh(self, name: str, *, seen_version: str | None = None) -> SecretVersion:
        return await self._read("refresh", name, AWSCURRENT)

    async def get_secret_stage(self, name: str, stage: str) -> SecretVersion:
        return await self._read("stage", name, stage)

    def invalidate(self, name: str | None = None) -> None:
        return None

    def status(self) -> list[CacheEntryStatus]:
        return []

    async def aclose(self) -> None:
        return None


@dataclass
class ManualClock:
    """Callable like `time.monotonic`; `advance` moves it."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(eq=False)
class FakeResource:
    """What `FaultyAdapter` builds: the version it came from, and how it ended."""

    version_id: str
    closed: bool = False
    terminated: bool = False


class Refused(Exception):
    """What a `FakeResource`'s service raises for refused credentials (like a 401)."""


@dataclass
class FaultyAdapter:
    """Builds `FakeResource`s; fails, hangs or refuses on demand, and records what it built.

    `faults` maps a method name (build, probe, close, terminate, is_auth_failure,
    describe) to the exception it raises, whatever its class; set or change it at any
    time. `is_auth_failure` says yes to `Refused`. `build_gate`: builds wait for it;
    `close_gate`: closes wait for it (never set: a close that hangs, which the core
    terminates after its drain timeout).
    """

    built: list[FakeResource] = field(default_factory=list)
    faults: dict[str, Exception] = field(default_factory=dict)
    build_gate: asyncio.Event | None = None
    close_gate: asyncio.Event | None = None

    def _fault(self, method: str) -> None:
        fault = self.faults.get(method)
        if fault is not None:
            raise fault

    async def build(self, value: SecretModel, version_id: str) -> FakeResource:
        if self.build_gate is not None:
            await self.build_gate.wait()
        self._fault("build")
        resource = FakeResource(version_id)
        self.built.append(resource)
        return resource

    async def probe(self, resource: FakeResource, version_id: str) -> None:
        self._fault("probe")

    async def close(self, resource: FakeResource) -> None:
        if self.close_gate is not None:
            await self.close_gate.wait()
        self._fault("close")
        resource.closed = True

    async def terminate(self, resource: FakeResource) -> None:
        resource.terminated = True
        self._fault("terminate")

    def is_auth_failure(self, exc: BaseException) -> bool:
        self._fault("is_auth_failure")
        return isinstance(exc, Refused)

    def describe(self, resource: FakeResource) -> dict[str, object]:
        """Log fields of a resource (the version it came from)."""
        self._fault("describe")
        return {"built_from": resource.version_id}
