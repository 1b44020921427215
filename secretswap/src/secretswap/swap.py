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

The core contains the unexpected: whatever an adapter's `build`, `probe`, `close`,
`terminate`, `is_auth_failure` or `describe`, a `recover` or an observer raises (any
`Exception`, ours or a driver's) leaves the old generation serving. A rotation that meets
one fails as a `RotationError` naming the step and the exception's type (never its
message: a driver's can carry a DSN); a drain logs it once and terminates; a caller whose
operation failed gets its own error back. Such failures count `RotationFailures`. Only
cancellation passes through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from secretswap._logging import EventLogger
from secretswap.errors import AuthFailed, ResourceClosedError, RotationError, SwapError
from secretswap.generation import Generation, ResourceAdapter
from secretswap.metrics import Counter, MetricsRegistry
from secretswap.observer import EventKind, HotSwapEvent, Observer, notify_all
from secretswap.port import LoadedSecret
from secretswap.schemas import SecretModel

__all__ = ["HotSwap", "Recover", "SwapOwner"]

log = EventLogger(__name__)

R = TypeVar("R")
V = TypeVar("V", bound=SecretModel)
T = TypeVar("T")

Recover = Callable[[str, str], Awaitable[bool]]
"""`recover(secret_name, failed_version_id)`: True once a newer version is in service."""


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
        self._failures = registry.counter("RotationFailures")
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
            **self._describe(resource),
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
        """After `generation`'s credentials were refused: True once a newer one serves.

        A `recover` that raises is contained (logged, counted): False, nothing newer."""
        if self._recover is None:
            return False
        if self._current is not generation:
            return True  # already swapped while this caller was failing
        try:
            return await self._recover(self.secret_name, generation.version_id)
        except Exception as exc:  # contained: the caller gets its auth failure
            self._contained("recover", exc, generation.version_id)
            return False

    def is_auth_failure(self, exc: BaseException) -> bool:
        """The adapter's verdict on `exc`; an adapter that raises deciding says no."""
        try:
            return self._adapter.is_auth_failure(exc)
        except Exception as failure:  # contained: the caller gets its own error back
            self._contained("is_auth_failure", failure, self.version_id or "")
            return False

    async def run(self, operation: Callable[[R], Awaitable[T]]) -> T:
        """`operation(resource)`; on an auth failure recover and retry once, else `AuthFailed`."""
        for attempt in (1, 2):
            async with self.lease() as generation:
                try:
                    return await operation(generation.resource)
                except Exception as exc:
                    if not self.is_auth_failure(exc):
                        raise
                    if attempt == 2 or not await self.recover(generation):
                        raise AuthFailed(
                            f"credentials of version {generation.version_id} of secret "
                            f"{self.secret_name} refused",
                            secret_name=self.secret_name,
                            version_id=generation.version_id,
                            generation=generation,
                        ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- rotation --------------------------------------------------------------------

    async def apply(self, loaded: LoadedSecret[V]) -> bool:
        """Build, probe and swap in `loaded`; the old generation drains in the background.

        False when that version is already in service. `RotationError` (the old
        generation keeps serving) when the new one cannot be built or fails its probe,
        whatever the adapter raised; `ResourceClosedError` when closed meanwhile.
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
            except Exception as exc:  # any adapter error rejects the version, nothing more
                raise self._rejected(version_id, "build", exc) from exc
            try:
                await self._adapter.probe(resource, version_id)
                if self._closed:
                    raise ResourceClosedError(
                        f"{self._adapter.events.prefix} closed during rotation"
                    )
            except BaseException as exc:
                await self._terminate(resource, version_id)
                if isinstance(exc, RotationError | ResourceClosedError) or not isinstance(
                    exc, Exception
                ):
                    raise  # ours already, or a cancellation
                raise self._rejected(version_id, "probe", exc) from exc
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
                **self._describe(resource),
            )
            self._notify("swapped", version_id)
            self._retiring.append(old)
            self._tasks.create_task(self._drain_and_close(old, reason="rotation"))
            return True

    # -- internals -------------------------------------------------------------------

    def _generation(self, resource: R, version_id: str) -> Generation[R]:
        self._numbers += 1
        return Generation(resource=resource, version_id=version_id, number=self._numbers)

    def _rejected(self, version_id: str, step: str, exc: Exception) -> RotationError:
        """The version cannot serve: our error's message, or only a foreign one's type."""
        if isinstance(exc, SwapError):
            reason, hint = str(exc), exc.hint
        else:
            reason = f"{step} raised {type(exc).__name__}"
            hint = f"the {self._adapter.events.prefix} adapter's {step} failed unexpectedly"
        return RotationError(
            f"version {version_id} of secret {self.secret_name} rejected: {reason}",
            secret_name=self.secret_name,
            version_id=version_id,
            hint=hint,
        )

    def _contained(self, step: str, exc: BaseException, version_id: str) -> None:
        """An unexpected error the core swallowed: counted, logged once with its type."""
        self._failures.value += 1
        log.error(
            "hotswap.adapter_failed",
            resource=self._adapter.events.prefix,
            secret=self.secret_name,
            version_id=version_id,
            step=step,
            error=type(exc).__name__,
        )

    def _describe(self, resource: R) -> dict[str, object]:
        try:
            return self._adapter.describe(resource)
        except Exception as exc:  # log fields only: contained
            self._contained("describe", exc, self.version_id or "")
            return {}

    async def _terminate(self, resource: R, version_id: str) -> None:
        """The adapter's `terminate`; a failure is logged and counted, never raised."""
        try:
            await self._adapter.terminate(resource)
        except Exception as exc:  # contained: nothing more can be done for it
            self._contained("terminate", exc, version_id)

    def _notify(self, kind: EventKind, version_id: str) -> None:
        event = HotSwapEvent(
            kind=kind,
            at=self._clock(),
            secret=self.secret_name,
            version_id=version_id,
            resource=self._adapter.events.prefix,
        )
        notify_all(self._observers, event, self._failures)

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
                await self._terminate(generation.resource, generation.version_id)
                return
            closing = asyncio.timeout(self._drain_timeout_s)
            try:
                async with closing:
                    await self._adapter.close(generation.resource)
            except Exception as exc:  # a close that hangs or fails: by force, then on
                hung = isinstance(exc, TimeoutError) and closing.expired()
                if hung:
                    self._count_drain_timeout()
                else:
                    self._contained("close", exc, generation.version_id)
                await self._terminate(generation.resource, generation.version_id)
                if not hung:
                    return
            log.info(
                events.closed,
                secret=self.secret_name,
                version_id=generation.version_id,
                reason=reason,
                drained_in_s=round(time.monotonic() - started, 3),
            )
        except Exception as exc:  # a drain is a child of the runtime's TaskGroup: never fail it
            self._failures.value += 1
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
