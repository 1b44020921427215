"""`HotSwap`: a resource built from a secret, swapped without failing a request.

The protocol (measured to give zero failures on asyncpg pools and OpenAI clients):

1. build the new generation from the parsed secret and probe it (the adapter);
2. swap the reference, so new callers get the new generation;
3. the old generation drains in the background, as a child of the caller's
   `asyncio.TaskGroup`: once nobody uses it (its `Occupancy`, bounded by the drain
   timeout) it is closed; users left after the timeout, or a close that hangs, get the
   adapter's `terminate`;
4. `aclose()` drains and closes the current generation and waits for every older one.

Callers hold a generation through `lease()` (or `run()`), which counts them. When the
adapter recognises an auth failure, `run()` asks `recover` (in the runtime the
`Refresher`, which alone decides which version is in service) and retries once if a
new version went into service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import structlog

from kb_mcp.errors import KbMcpError, ResourceClosedError, RotationError
from kb_mcp.hotswap.generation import Generation, ResourceAdapter
from kb_mcp.hotswap.observer import EventKind, HotSwapEvent, Observer, notify_all
from kb_mcp.observability.counters import Counter, MetricsRegistry
from kb_mcp.secrets.port import LoadedSecret
from kb_mcp.secrets.schemas import SecretModel

__all__ = ["AuthFailed", "HotSwap", "Recover", "SwapOwner"]

log = structlog.get_logger(__name__)

R = TypeVar("R")
V = TypeVar("V", bound=SecretModel)
T = TypeVar("T")

Recover = Callable[[str, str], Awaitable[bool]]
"""`recover(secret_name, failed_version_id)`: True once a newer version is in service."""


class AuthFailed(Exception):
    """Raised by `run()` when credentials were refused and no newer version helped.

    Carries the generation that was refused and the adapter's exception (`__cause__`);
    adapters turn it into their own error (`DatabaseAuthError`, `EmbeddingAuthError`).
    """

    def __init__(self, generation: Generation[Any]) -> None:
        super().__init__(f"credentials of version {generation.version_id} refused")
        self.generation = generation


class HotSwap(Generic[V, R]):
    """Owns the current generation of one resource kind for one secret."""

    def __init__(
        self,
        adapter: ResourceAdapter[V, R],
        secret_name: str,
        *,
        tasks: asyncio.TaskGroup,
        drain_timeout_s: float = 30.0,
        recover: Recover | None = None,
        metrics: MetricsRegistry | None = None,
        swaps_metric: str = "",
        drain_timeouts_metric: str = "",
        observers: tuple[Observer, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter = adapter
        self.secret_name = secret_name
        self._tasks = tasks
        self._drain_timeout_s = drain_timeout_s
        self._recover = recover
        registry = metrics or MetricsRegistry()
        self._swaps: Counter | None = registry.counter(swaps_metric) if swaps_metric else None
        self._drain_timeouts: Counter | None = (
            registry.counter(drain_timeouts_metric) if drain_timeouts_metric else None
        )
        self._observers = observers
        self._clock = clock
        self._current: Generation[R] | None = None
        self._retiring: list[Generation[R]] = []
        self._lock = asyncio.Lock()
        self._numbers = 0
        self._closed = False

    # -- state -----------------------------------------------------------------------

    @property
    def current(self) -> Generation[R]:
        """The generation in service; `ResourceClosedError` before start or after close."""
        generation = self._current
        if generation is None:
            raise ResourceClosedError(f"{self._adapter.events.prefix} is not open")
        return generation

    @property
    def version_id(self) -> str | None:
        """The secret version the current generation was built from."""
        return None if self._current is None else self._current.version_id

    @property
    def draining(self) -> int:
        """How many old generations are still draining."""
        return len(self._retiring)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, loaded: LoadedSecret[V]) -> Generation[R]:
        """Build the first generation (boot path: errors propagate as they are)."""
        if self._current is not None or self._closed:
            raise ResourceClosedError(f"{self._adapter.events.prefix} already started")
        resource = await self._adapter.build(loaded.value, loaded.version_id)
        self._current = self._generation(resource, loaded.version_id)
        log.info(
            self._adapter.events.ready,
            secret=self.secret_name,
            version_id=loaded.version_id,
            **self._adapter.describe(resource),
        )
        return self._current

    async def aclose(self) -> None:
        """Drain and close the current generation, then wait for the draining ones."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            generation, self._current = self._current, None
        if generation is not None:
            self._retiring.append(generation)
            await self._drain_and_close(generation, reason="shutdown")
        await asyncio.gather(*(g.closed.wait() for g in list(self._retiring)))

    # -- use -------------------------------------------------------------------------

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Generation[R]]:
        """The current generation, counted as in use until the block ends."""
        generation = self.current
        generation.occupancy.enter()
        try:
            yield generation
        finally:
            generation.occupancy.leave()

    async def recover(self, generation: Generation[R]) -> bool:
        """After `generation`'s credentials were refused: True once a newer one serves."""
        if self._recover is None:
            return False
        if self._current is not generation:
            return True  # already swapped while this caller was failing
        return await self._recover(self.secret_name, generation.version_id)

    async def run(self, operation: Callable[[R], Awaitable[T]]) -> T:
        """`operation(resource)`; on an auth failure recover and retry once, else `AuthFailed`."""
        for attempt in (1, 2):
            async with self.lease() as generation:
                try:
                    return await operation(generation.resource)
                except Exception as exc:
                    if not self._adapter.is_auth_failure(exc):
                        raise
                    if attempt == 2 or not await self.recover(generation):
                        raise AuthFailed(generation) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- rotation --------------------------------------------------------------------

    async def apply(self, loaded: LoadedSecret[V]) -> bool:
        """Build, probe and swap in `loaded`; the old generation drains in the background.

        False when that version is already in service. `RotationError` (the old
        generation keeps serving) when the new one cannot be built or fails its probe.
        """
        version_id = loaded.version_id
        async with self._lock:
            old = self.current
            if old.version_id == version_id:
                return False
            try:
                resource = await self._adapter.build(loaded.value, version_id)
            except RotationError:
                raise
            except KbMcpError as exc:
                raise self._rejected(version_id, exc) from exc
            try:
                await self._adapter.probe(resource, version_id)
                if self._closed:
                    raise ResourceClosedError(
                        f"{self._adapter.events.prefix} closed during rotation"
                    )
            except BaseException as exc:
                await self._adapter.terminate(resource)
                if isinstance(exc, KbMcpError) and not isinstance(
                    exc, RotationError | ResourceClosedError
                ):
                    raise self._rejected(version_id, exc) from exc
                raise
            new = self._generation(resource, version_id)
            self._current = new
            if self._swaps is not None:
                self._swaps.value += 1
            log.info(
                self._adapter.events.swapped,
                secret=self.secret_name,
                old_version_id=old.version_id,
                new_version_id=version_id,
                old_users=old.users,
                **self._adapter.describe(resource),
            )
            self._notify("swapped", version_id)
            self._retiring.append(old)
            self._tasks.create_task(self._drain_and_close(old, reason="rotation"))
            return True

    # -- internals -------------------------------------------------------------------

    def _generation(self, resource: R, version_id: str) -> Generation[R]:
        self._numbers += 1
        return Generation(resource=resource, version_id=version_id, number=self._numbers)

    def _rejected(self, version_id: str, exc: KbMcpError) -> RotationError:
        return RotationError(
            f"version {version_id} of secret {self.secret_name} rejected: {exc}",
            secret_name=self.secret_name,
            version_id=version_id,
            hint=exc.hint,
        )

    def _notify(self, kind: EventKind, version_id: str) -> None:
        event = HotSwapEvent(
            kind=kind,
            at=self._clock(),
            secret=self.secret_name,
            version_id=version_id,
            resource=self._adapter.events.prefix,
        )
        notify_all(self._observers, event)

    async def _drain_and_close(self, generation: Generation[R], *, reason: str) -> None:
        """Wait for idle (bounded), close (bounded), terminate otherwise. Never raises."""
        started = time.monotonic()
        events = self._adapter.events
        try:
            if not await generation.occupancy.wait_idle(self._drain_timeout_s):
                self._count_drain_timeout()
                log.warning(
                    events.drain_timeout,
                    secret=self.secret_name,
                    version_id=generation.version_id,
                    users=generation.users,
                    drain_timeout_s=self._drain_timeout_s,
                    reason=reason,
                )
                await self._adapter.terminate(generation.resource)
                return
            try:
                await asyncio.wait_for(
                    self._adapter.close(generation.resource), self._drain_timeout_s
                )
            except TimeoutError:
                self._count_drain_timeout()
                await self._adapter.terminate(generation.resource)
            log.info(
                events.closed,
                secret=self.secret_name,
                version_id=generation.version_id,
                reason=reason,
                drained_in_s=round(time.monotonic() - started, 3),
            )
        except Exception as exc:  # a drain is a child of the runtime's TaskGroup: never fail it
            log.error(
                events.close_failed,
                secret=self.secret_name,
                version_id=generation.version_id,
                error=type(exc).__name__,
            )
        finally:
            generation.closed.set()
            if generation in self._retiring:
                self._retiring.remove(generation)
            self._notify("closed", generation.version_id)

    def _count_drain_timeout(self) -> None:
        if self._drain_timeouts is not None:
            self._drain_timeouts.value += 1


class SwapOwner(Generic[V, R]):
    """The base of a thin adapter (`PoolManager`, `OpenAIClientHolder`): the lifecycle and
    state of its `HotSwap`, so each adapter only adds how its resource is used."""

    def __init__(self, swap: HotSwap[V, R]) -> None:
        self._swap = swap
        self.secret_name = swap.secret_name

    async def start(self, loaded: LoadedSecret[V]) -> None:
        """Build the first generation from the secret read at boot."""
        await self._swap.start(loaded)

    async def apply(self, loaded: LoadedSecret[V]) -> bool:
        """Put a new version into service (the refresher calls this); False if already."""
        return await self._swap.apply(loaded)

    async def aclose(self) -> None:
        """Close the current generation after its users finish (bounded), and older ones."""
        await self._swap.aclose()

    @property
    def version_id(self) -> str | None:
        """The secret version the current generation was built from."""
        return self._swap.version_id

    @property
    def draining(self) -> int:
        """How many old generations are still draining."""
        return self._swap.draining
