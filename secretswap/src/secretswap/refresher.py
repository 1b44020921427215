"""The refresher: the one place that decides which version of a secret is in service.

Every TTL (with jitter, so many instances do not poll in step) it re-reads each watched
secret's AWSCURRENT version: one API call per secret per TTL. A VersionId different from
the one in service (a rollback is just another new version) is parsed once, by the model
the watch declares, and handed to every watcher of that secret (each a `HotSwap` or a
plain value holder), which builds, probes and swaps. If that fails the old resources
stay, `secret.rotation_failed` is logged, `RotationFailures` counted, and the next
attempt comes sooner, with exponential backoff.

Auth failures (PostgreSQL 28P01/28000, OpenAI 401) do not rotate anything themselves:
the resource asks `recover()`, a single-flight refresh of that secret (reason: auth
failure) which may also offer the AWSPENDING version (single-user rotation window). The
refresher puts the first working candidate into service and every watcher follows.

Rotations of one secret are serialized; a duplicate trigger for a version already in
service is a no-op. `trigger()` (SIGHUP) refreshes everything now.

Nothing a provider, a watcher or an observer raises ends the refresher: an exception
that is not ours is handled as a failed refresh or a rejected version (logged once with
its type, never its message, and counted in `RotationFailures`); only cancellation stops
`run()`. The last rejected version of each secret is kept (`rejected()`, for readiness)
until a version is put into service.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from secretswap._logging import EventLogger
from secretswap.errors import RotationError, SecretNotFoundError, SecretsError, SwapError
from secretswap.metrics import MetricsRegistry
from secretswap.observer import EventKind, HotSwapEvent, Observer, notify_all
from secretswap.port import AWSPENDING, LoadedSecret, SecretsProvider, SecretVersion
from secretswap.schemas import SecretModel, parse_secret

__all__ = ["MIN_BACKOFF_S", "RECOVERY_WINDOW_S", "Refresher", "RejectedVersion", "SecretWatcher"]

log = EventLogger(__name__)

MIN_BACKOFF_S = 1.0
RECOVERY_WINDOW_S = 1.0
"""After a recovery found nothing, further auth failures of that version fail fast."""


class SecretWatcher(Protocol):
    """Something built from a secret: it can put a new (parsed) version into service."""

    async def apply(self, loaded: LoadedSecret[Any]) -> bool:
        """Swap in what `loaded` gives; False if already in service.

        Raises `SwapError` (usually `RotationError`) when the version cannot be used:
        the old one keeps serving.
        """
        ...


@dataclass(frozen=True, slots=True)
class RejectedVersion:
    """A version of a secret that could not be put into service (never its value)."""

    secret: str
    version_id: str
    error: str
    """The class of the error that rejected it (`RotationError`, or a foreign one's)."""
    cause: str | None = None
    """The class of what caused it, when the error wraps one (`InvalidPasswordError`)."""


@dataclass(eq=False)
class _Watch:
    name: str
    model: type[SecretModel]
    watchers: list[SecretWatcher]
    seen_version: str
    offer_pending: bool
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    recovery: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    failed_recovery: tuple[str, float] | None = None
    rejected: RejectedVersion | None = None


class Refresher:
    """Polls watched secrets and puts new versions into service; recovers auth failures."""

    def __init__(
        self,
        provider: SecretsProvider,
        *,
        interval_s: float,
        jitter_ratio: float = 0.1,
        metrics: MetricsRegistry | None = None,
        rng: random.Random | None = None,
        observers: tuple[Observer, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._interval_s = interval_s
        self._jitter_ratio = jitter_ratio
        self._metrics = metrics or MetricsRegistry()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._observers = observers
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        self._wake = asyncio.Event()
        self._refreshing = False
        self._rotations_detected = self._metrics.counter("RotationsDetected")
        self._rotation_failures = self._metrics.counter("RotationFailures")

    def watch(
        self,
        loaded: LoadedSecret[Any],
        *watchers: SecretWatcher,
        offer_pending: bool = False,
    ) -> None:
        """Watch `loaded`'s secret, whose version is in service now, parsed as its model.

        `offer_pending`: an auth-failure recovery also tries the AWSPENDING version.
        Each recovery attempt is told to the observers (`recovering`).
        """
        name = loaded.version.name
        existing = self._watches.get(name)
        if existing is not None:
            existing.watchers.extend(watchers)
            return
        self._watches[name] = _Watch(
            name=name,
            model=type(loaded.value),
            watchers=list(watchers),
            seen_version=loaded.version_id,
            offer_pending=offer_pending,
        )

    def in_service(self, name: str) -> str:
        """The version of `name` in service now (the one record of it: holders, the handle
        and readiness read it here). `KeyError` when `name` is not watched."""
        return self._watches[name].seen_version

    def versions_in_service(self) -> dict[str, str]:
        """Every watched secret and the version of it in service now."""
        return {name: watch.seen_version for name, watch in self._watches.items()}

    def rejected(self) -> list[RejectedVersion]:
        """The last rejected version of each secret, while no newer version went into
        service (readiness reports them)."""
        return [w.rejected for w in self._watches.values() if w.rejected is not None]

    def trigger(self) -> None:
        """Refresh every watched secret now (SIGHUP)."""
        log.info("secret.refresh_triggered", secrets=sorted(self._watches))
        self._wake.set()

    def next_delay(self) -> float:
        """Seconds until the next poll: the interval with jitter, sooner after failures."""
        jitter = 1.0 + self._rng.uniform(-self._jitter_ratio, self._jitter_ratio)
        delay = self._interval_s * jitter
        failures = max((w.failures for w in self._watches.values()), default=0)
        if failures:
            delay = min(delay, MIN_BACKOFF_S * 2 ** (failures - 1) * jitter)
        return delay

    # -- polling ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; a stop cancels a round in progress (it must not hang)."""
        async with asyncio.TaskGroup() as group:
            polling = group.create_task(self._poll_forever())
            await stop.wait()
            if self._refreshing:
                log.info("secret.refresh_cancelled", reason="stopping")
            polling.cancel()

    async def _poll_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # the interval passed: poll
                await asyncio.wait_for(self._wake.wait(), self.next_delay())
            self._wake.clear()
            try:
                await self.refresh_all()
            except Exception as exc:  # the last guard: a round fails, the refresher lives on
                self._rotation_failures.value += 1
                log.error("secret.refresh_round_failed", error=type(exc).__name__)

    async def refresh_all(self) -> None:
        """Re-read every watched secret once and rotate what changed."""
        self._notify("poll")
        self._refreshing = True
        try:
            await asyncio.gather(*(self.refresh_one(name) for name in list(self._watches)))
        finally:
            self._refreshing = False

    async def refresh_one(self, name: str) -> bool:
        """Re-read `name`; True when a new version was put into service."""
        watch = self._watches[name]
        try:
            version = await self._provider.refresh(name)
        except SecretsError:
            # The cache logged `secret.refresh_failed` and counted RefreshErrors; the old
            # value keeps serving. Try again sooner.
            watch.failures += 1
            return False
        except Exception as exc:  # a provider's foreign error: the same, logged here
            watch.failures += 1
            self._rotation_failures.value += 1
            log.error(
                "secret.refresh_failed",
                secret=name,
                error=type(exc).__name__,
                attempt=watch.failures,
            )
            return False
        return await self.offer(name, version)

    async def offer(self, name: str, version: SecretVersion) -> bool:
        """Put `version` into service if it is new (serialized per secret)."""
        watch = self._watches[name]
        async with watch.lock:
            if version.version_id == watch.seen_version:
                watch.failures = 0
                watch.rejected = None  # AWSCURRENT is back on the version in service
                return False
            started = time.monotonic()
            try:
                changed = await self._install(watch, version, reason="poll")
            except Exception as exc:  # any watcher's error rejects the version, nothing more
                watch.failures += 1
                self._rotation_failures.value += 1
                watch.rejected = _rejection(name, version.version_id, exc)
                log.error(
                    "secret.rotation_failed",
                    secret=name,
                    version_id=version.version_id,
                    serving_version_id=watch.seen_version,
                    error=watch.rejected.error,
                    cause=watch.rejected.cause,
                    detail=_detail(exc),
                    attempt=watch.failures,
                )
                return False
            watch.failures = 0
            log.info(
                "secret.rotation_completed" if changed else "secret.version_already_in_service",
                secret=name,
                version_id=version.version_id,
                duration_s=round(time.monotonic() - started, 3),
            )
            return changed

    # -- auth-failure recovery -------------------------------------------------------

    async def recover(self, name: str, failed_version_id: str) -> bool:
        """Single-flight: after `failed_version_id` was refused, find and serve a newer one.

        True once a version other than `failed_version_id` is in service (possibly put
        there by a concurrent caller); False when nothing newer works.
        """
        watch = self._watches.get(name)
        if watch is None:
            return False
        async with watch.recovery:
            if watch.seen_version != failed_version_id:
                return True
            failed = watch.failed_recovery
            if (
                failed is not None
                and failed[0] == failed_version_id
                and self._clock() - failed[1] < RECOVERY_WINDOW_S
            ):
                return False
            self._notify("recovering", name, failed_version_id)
            log.warning("secret.auth_failed", secret=name, version_id=failed_version_id)
            for candidate in await self._candidates(watch, failed_version_id):
                async with watch.lock:
                    if watch.seen_version != failed_version_id:
                        return True
                    try:
                        await self._install(watch, candidate, reason="auth_failure")
                    except Exception as exc:  # any watcher's error: try the next candidate
                        watch.rejected = _rejection(name, candidate.version_id, exc)
                        log.warning(
                            "secret.auth_candidate_rejected",
                            secret=name,
                            version_id=candidate.version_id,
                            stages=list(candidate.stages),
                            error=_detail(exc),
                        )
                        continue
                log.info(
                    "secret.auth_recovered",
                    secret=name,
                    old_version_id=failed_version_id,
                    new_version_id=candidate.version_id,
                    stages=list(candidate.stages),
                )
                return True
            watch.failed_recovery = (failed_version_id, self._clock())
            return False

    async def _candidates(self, watch: _Watch, failed_version_id: str) -> list[SecretVersion]:
        """AWSCURRENT read now, then (database) AWSPENDING: versions other than the failed one."""
        candidates: list[SecretVersion] = []
        try:
            current = await self._provider.refresh(watch.name, seen_version=failed_version_id)
        except Exception as error:  # a provider's error, ours or not: no candidate
            log.warning("secret.auth_refresh_failed", secret=watch.name, error=_detail(error))
        else:
            if current.version_id != failed_version_id:
                candidates.append(current)
        if not watch.offer_pending:
            return candidates
        try:
            pending = await self._provider.get_secret_stage(watch.name, AWSPENDING)
        except SecretNotFoundError:
            pass
        except Exception as error:  # a provider's error, ours or not: no candidate
            log.warning("secret.auth_pending_failed", secret=watch.name, error=_detail(error))
        else:
            if pending.version_id not in {failed_version_id, *(c.version_id for c in candidates)}:
                candidates.append(pending)
        return candidates

    # -- internals -------------------------------------------------------------------

    async def _install(self, watch: _Watch, version: SecretVersion, *, reason: str) -> bool:
        """Under `watch.lock`: parse once, hand to every watcher, record it as in service."""
        log.info(
            "secret.rotation_detected",
            secret=watch.name,
            old_version_id=watch.seen_version,
            new_version_id=version.version_id,
            reason=reason,
        )
        self._rotations_detected.value += 1
        self._notify("detected", watch.name, version.version_id)
        try:
            value = parse_secret(
                watch.model, version.value.get_secret_value(), secret_name=watch.name
            )
        except SecretsError as exc:
            raise RotationError(
                str(exc), secret_name=watch.name, version_id=version.version_id, hint=exc.hint
            ) from exc
        loaded = LoadedSecret(value=value, version=version)
        changed = False
        for watcher in watch.watchers:
            changed = await watcher.apply(loaded) or changed
        watch.seen_version = version.version_id
        watch.rejected = None
        return changed

    def _notify(self, kind: EventKind, secret: str = "", version_id: str = "") -> None:
        event = HotSwapEvent(kind=kind, at=self._clock(), secret=secret, version_id=version_id)
        notify_all(self._observers, event, self._rotation_failures)


def _rejection(name: str, version_id: str, exc: Exception) -> RejectedVersion:
    cause = exc.__cause__
    return RejectedVersion(
        secret=name,
        version_id=version_id,
        error=type(exc).__name__,
        cause=None if cause is None else type(cause).__name__,
    )


def _detail(exc: BaseException) -> str:
    """What a log may say about `exc`: our messages (written never to hold a value), or a
    foreign exception's class alone (a driver's message can carry a DSN or a key)."""
    if isinstance(exc, SwapError):
        return str(exc)
    return type(exc).__name__
