"""`HotSwap`: a resource built from a secret, swapped without failing a request.

The protocol (measured to give zero failures on asyncpg pools and OpenAI clients):

1. build the new generation from the parsed secret and probe it (the adapter);
2. swap the reference, so new callers get the new generation;
3. the old generation drains in the background, as a child of the caller's
   `asyncio.TaskGroup`: once nobody uses it (its `Occupancy`, bounded by the drain
   timeout) it is closed; users left after the timeout, or a close that hangs, get the
   adapter's `terminate`;
4. `aclose()` drains and closes the current generation and waits for every older one.

Callers hold a generation through `lease()`, `leased(op)` or `run(op)`, which count them.
When the adapter recognises an auth failure, `leased`/`run` ask `recover` (in the runtime
the `Refresher`, which alone decides and records which version is in service) and retry
once if a new version went into service: the one place that retry is written.

Log events are named after `kind` (`db.pool` -> `db.pool_swapped`, `db.pool_closed`...);
metrics are the observers' business (`HotSwapEvent`: `swapped`, `drain_timeout`,
`closed`), beside the `RotationFailures` the core counts itself.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from secretswap._logging import EventLogger
from secretswap.errors import AuthFailed, ResourceClosedError, RotationError, SwapError
from secretswap.generation import Generation, ResourceAdapter
from secretswap.metrics import MetricsRegistry
from secretswap.observer import EventKind, HotSwapEvent, Observer, notify_all
from secretswap.port import LoadedSecret
from secretswap.schemas import SecretModel

if TYPE_CHECKING:
    from secretswap.refresher import Refresher

__all__ = ["HotSwap", "Recover", "SwapOwner"]

log = EventLogger(__name__)

R = TypeVar("R")
V = TypeVar("V", bound=SecretModel)
T = TypeVar("T")

Recover = Callable[[str, str], Awaitable[bool]]
"""`recover(secret_name, failed_version_id)`: True once a newer version is in service."""


@dataclass(frozen=True, slots=True)
class _EventNames:
    """The log event names of one kind of resource (`db.pool` -> `db.pool_swapped`...)."""

    ready: str
    swapped: str
    drain_timeout: str
    closed: str
    close_failed: str

    def __init__(self, kind: str) -> None:
        for name in ("ready", "swapped", "drain_timeout", "closed", "close_failed"):
            object.__setattr__(self, name, f"{kind}_{name}")


class HotSwap(Generic[V, R]):
    """Owns the current generation of one resource kind for one secret."""

    def __init__(
        self,
        adapter: ResourceAdapter[V, R],
        secret_name: str,
        *,
        tasks: asyncio.TaskGroup,
        kind: str = "resource",
        drain_timeout_s: float = 30.0,
        recover: Recover | None = None,
        metrics: MetricsRegistry | None = None,
        observers: tuple[Observer, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`kind` names the resource in logs and events (`db.pool`); `recover` is asked after
        an auth failure (`Refresher.recover`); `metrics` gets `RotationFailures`."""
        self._adapter = adapter
        self.secret_name = secret_name
        self.kind = kind
        self._events = _EventNames(kind)
        self._tasks = tasks
        self._drain_timeout_s = drain_timeout_s
        self._recover = recover
        self._failures = (metrics or MetricsRegistry()).counter("RotationFailures")
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
            raise ResourceClosedError(f"{self.kind} is not open")
        return generation

    @property
    def draining(self) -> int:
        """How many old generations are still draining."""
        return len(self._retiring)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, loaded: LoadedSecret[V]) -> Generation[R]:
        """Build the first generation (boot path: errors propagate as they are)."""
        if self._current is not None or self._closed:
            raise ResourceClosedError(f"{self.kind} already started")
        resource = await self._adapter.build(loaded.value, loaded.version_id)
        self._current = self._generation(resource, loaded.version_id)
        log.info(
            self._events.ready,
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
        """The adapter's verdict on `exc` (none: never); an adapter that raises says no."""
        decide = getattr(self._adapter, "is_auth_failure", None)
        if decide is None:
            return False
        try:
            return bool(decide(exc))
        except Exception as failure:  # contained: the caller gets its own error back
            version_id = "" if self._current is None else self._current.version_id
            self._contained("is_auth_failure", failure, version_id)
            return False

    @asynccontextmanager
    async def leased(
        self, operation: Callable[[R], Awaitable[T]]
    ) -> AsyncIterator[tuple[Generation[R], T]]:
        """The current generation, held until the block ends, and `operation(resource)`'s
        result on it (a pool's `acquire`).

        When `operation` fails with an auth failure, `recover` is asked once: with a newer
        version in service it is retried on that generation, otherwise `AuthFailed` (its
        cause: the refusal). Errors of the block itself are not retried.
        """
        for attempt in (1, 2):
            async with self.lease() as generation:
                try:
                    value = await operation(generation.resource)
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
                    continue
                yield generation, value
                return

    async def run(self, operation: Callable[[R], Awaitable[T]]) -> T:
        """`operation(resource)`; on an auth failure recover and retry once, else `AuthFailed`."""
        async with self.leased(operation) as (_, value):
            return value

    # -- rotation --------------------------------------------------------------------

    async def apply(self, loaded: LoadedSecret[V]) -> bool:
        """Build, probe and swap in `loaded`; the old generation drains in the background.

        The refresher calls it only with a version other than the one in service (it alone
        decides which version serves). `RotationError` (the old
        generation keeps serving) when the new one cannot be built or fails its probe,
        whatever the adapter raised; `ResourceClosedError` when closed meanwhile.
        """
        version_id = loaded.version_id
        async with self._lock:
            old = self.current
            try:
                resource = await self._adapter.build(loaded.value, version_id)
            except RotationError:
                raise
            except Exception as exc:  # any adapter error rejects the version, nothing more
                raise self._rejected(version_id, "build", exc) from exc
            try:
                await self._adapter.probe(resource, version_id)
                if self._closed:
                    raise ResourceClosedError(f"{self.kind} closed during rotation")
            except BaseException as exc:
                await self._terminate(resource, version_id)
                if isinstance(exc, RotationError | ResourceClosedError) or not isinstance(
                    exc, Exception
                ):
                    raise  # ours already, or a cancellation
                raise self._rejected(version_id, "probe", exc) from exc
            new = self._generation(resource, version_id)
            self._current = new
            log.info(
                self._events.swapped,
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
            hint = f"the {self.kind} adapter's {step} failed unexpectedly"
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
            resource=self.kind,
            secret=self.secret_name,
            version_id=version_id,
            step=step,
            error=type(exc).__name__,
        )

    def _describe(self, resource: R) -> dict[str, object]:
        describe = getattr(self._adapter, "describe", None)
        if describe is None:
            return {}
        try:
            return dict(describe(resource))
        except Exception as exc:  # log fields only: contained
            version_id = "" if self._current is None else self._current.version_id
            self._contained("describe", exc, version_id)
            return {}

    async def _terminate(self, resource: R, version_id: str) -> None:
        """The adapter's `terminate` (none: `close`); a failure is logged and counted,
        never raised."""
        terminate = getattr(self._adapter, "terminate", None) or self._adapter.close
        try:
            await terminate(resource)
        except Exception as exc:  # contained: nothing more can be done for it
            self._contained("terminate", exc, version_id)

    def _notify(self, kind: EventKind, version_id: str) -> None:
        event = HotSwapEvent(
            kind=kind,
            at=self._clock(),
            secret=self.secret_name,
            version_id=version_id,
            resource=self.kind,
        )
        notify_all(self._observers, event, self._failures)

    async def _drain_and_close(self, generation: Generation[R], *, reason: str) -> None:
        """Wait for idle (bounded), close (bounded), terminate otherwise. Never raises."""
        started = time.monotonic()
        try:
            if not await generation.occupancy.wait_idle(self._drain_timeout_s):
                self._notify("drain_timeout", generation.version_id)
                log.warning(
                    self._events.drain_timeout,
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
                    self._notify("drain_timeout", generation.version_id)
                else:
                    self._contained("close", exc, generation.version_id)
                await self._terminate(generation.resource, generation.version_id)
                if not hung:
                    return
            log.info(
                self._events.closed,
                secret=self.secret_name,
                version_id=generation.version_id,
                reason=reason,
                drained_in_s=round(time.monotonic() - started, 3),
            )
        except Exception as exc:  # a drain is a child of the runtime's TaskGroup: never fail it
            self._failures.value += 1
            log.error(
                self._events.close_failed,
                secret=self.secret_name,
                version_id=generation.version_id,
                error=type(exc).__name__,
            )
        finally:
            generation.closed.set()
            if generation in self._retiring:
                self._retiring.remove(generation)
            self._notify("closed", generation.version_id)


class SwapOwner(Generic[V, R]):
    """The base of a holder class (a database pool manager, an API client holder) over one
    `HotSwap`: its lifecycle, and the version in service as `refresher` records it, so each
    holder only adds how its resource is used."""

    def __init__(self, swap: HotSwap[V, R], refresher: Refresher | None = None) -> None:
        self._swap = swap
        self._refresher = refresher
        self.secret_name = swap.secret_name

    async def start(self, loaded: LoadedSecret[V]) -> None:
        """Build the first generation from the secret read at boot."""
        await self._swap.start(loaded)

    async def apply(self, loaded: LoadedSecret[V]) -> bool:
        """Put a new version into service (the refresher calls this)."""
        return await self._swap.apply(loaded)

    async def aclose(self) -> None:
        """Close the current generation after its users finish (bounded), and older ones."""
        await self._swap.aclose()

    @property
    def version_id(self) -> str | None:
        """The secret version in service, as the refresher records it (None: not watched)."""
        if self._refresher is None:
            return None
        return self._refresher.versions_in_service().get(self.secret_name)

    @property
    def draining(self) -> int:
        """How many old generations are still draining."""
        return self._swap.draining
