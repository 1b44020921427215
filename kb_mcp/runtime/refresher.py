"""The background refresher: notices rotated secrets and puts them into service.

Every TTL (with jitter, so many instances do not poll in step) it re-reads each watched
secret's AWSCURRENT version: one API call per secret per TTL. A VersionId different from
the last one seen (a rollback is just another new version) is handed to the watcher,
which validates it, builds the replacement, swaps it in and drains the old one. If that
fails the old resource stays, `secret.rotation_failed` is logged, `RotationFailures`
counted, and the next attempt comes sooner, with exponential backoff.

Rotations of one secret are serialized; a duplicate trigger for a version already in
service is a no-op. `trigger()` (SIGHUP) refreshes everything now.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from kb_mcp.errors import KbMcpError, RotationError, SecretsError
from kb_mcp.observability.counters import MetricsRegistry
from kb_mcp.secrets.port import SecretsProvider, SecretVersion

__all__ = ["Refresher", "SecretWatcher"]

log = structlog.get_logger(__name__)

MIN_BACKOFF_S = 1.0


class SecretWatcher(Protocol):
    """A resource built from a secret: it can put a new version of it into service."""

    async def apply(self, version: SecretVersion) -> bool:
        """Swap in a resource built from `version`; False if already in service.

        Raises `RotationError` when the version cannot be used (the old one keeps serving).
        """
        ...


@dataclass(eq=False)
class _Watch:
    name: str
    watchers: list[SecretWatcher]
    seen_version: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    last_success: float = field(default_factory=time.monotonic)


class Refresher:
    """Polls watched secrets and rotates the resources built from them."""

    def __init__(
        self,
        provider: SecretsProvider,
        *,
        interval_s: float,
        jitter_ratio: float = 0.1,
        metrics: MetricsRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._provider = provider
        self._interval_s = interval_s
        self._jitter_ratio = jitter_ratio
        self._metrics = metrics or MetricsRegistry()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._watches: dict[str, _Watch] = {}
        self._wake = asyncio.Event()
        self._rotations_detected = self._metrics.counter("RotationsDetected")
        self._rotation_failures = self._metrics.counter("RotationFailures")
        self.polls = 0
        """Completed poll rounds (tests and benchmarks read it)."""
        self.poll_times: list[float] = []
        """`time.monotonic()` of each poll round's start (bounded to the last 1,000)."""

    def watch(self, name: str, version_id: str, *watchers: SecretWatcher) -> None:
        """Watch `name`, whose version `version_id` is in service now."""
        existing = self._watches.get(name)
        if existing is not None:
            existing.watchers.extend(watchers)
            return
        self._watches[name] = _Watch(name=name, watchers=list(watchers), seen_version=version_id)

    def seen_versions(self) -> dict[str, str]:
        """The last version of each watched secret that was put into service."""
        return {name: w.seen_version for name, w in self._watches.items()}

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

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set."""
        while not stop.is_set():
            delay = self.next_delay()
            stop_wait = asyncio.ensure_future(stop.wait())
            wake_wait = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    {stop_wait, wake_wait}, timeout=delay, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in (stop_wait, wake_wait):
                    waiter.cancel()
                await asyncio.gather(stop_wait, wake_wait, return_exceptions=True)
            if stop.is_set():
                return
            self._wake.clear()
            await self._refresh_unless_stopped(stop)

    async def _refresh_unless_stopped(self, stop: asyncio.Event) -> None:
        """One poll round; a stop request cancels it (a hanging rotation must not block)."""
        refresh = asyncio.ensure_future(self.refresh_all())
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({refresh, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            if not refresh.done():
                log.info("secret.refresh_cancelled", reason="stopping")
                refresh.cancel()
            await asyncio.gather(refresh, stop_wait, return_exceptions=True)

    async def refresh_all(self) -> None:
        """Re-read every watched secret once and rotate what changed."""
        self.poll_times.append(time.monotonic())
        del self.poll_times[:-1000]
        await asyncio.gather(*(self.refresh_one(name) for name in list(self._watches)))
        self.polls += 1

    async def refresh_one(self, name: str) -> bool:
        """Re-read `name`; returns True when a new version was put into service."""
        watch = self._watches[name]
        try:
            version = await self._provider.refresh(name)
        except SecretsError:
            # The cache logged `secret.refresh_failed` and counted RefreshErrors; the old
            # value keeps serving. Try again sooner.
            watch.failures += 1
            return False
        return await self.offer(name, version)

    async def offer(self, name: str, version: SecretVersion) -> bool:
        """Put `version` into service if it is new (serialized per secret)."""
        watch = self._watches[name]
        async with watch.lock:
            if version.version_id == watch.seen_version:
                watch.failures = 0
                watch.last_success = time.monotonic()
                return False
            log.info(
                "secret.rotation_detected",
                secret=name,
                old_version_id=watch.seen_version,
                new_version_id=version.version_id,
            )
            self._rotations_detected.value += 1
            started = time.monotonic()
            changed = False
            try:
                for watcher in watch.watchers:
                    changed = await watcher.apply(version) or changed
            except (RotationError, KbMcpError) as exc:
                watch.failures += 1
                self._rotation_failures.value += 1
                log.error(
                    "secret.rotation_failed",
                    secret=name,
                    version_id=version.version_id,
                    serving_version_id=watch.seen_version,
                    error=type(exc).__name__,
                    detail=str(exc),
                    attempt=watch.failures,
                )
                return False
            watch.seen_version = version.version_id
            watch.failures = 0
            watch.last_success = time.monotonic()
            log.info(
                "secret.rotation_completed" if changed else "secret.version_already_in_service",
                secret=name,
                version_id=version.version_id,
                duration_s=round(time.monotonic() - started, 3),
            )
            return changed
