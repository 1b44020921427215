"""A TTL cache of secret versions: single-flight, stale-on-error, force-refreshable.

- Time comes from `time.monotonic()` (injectable for tests), never the wall clock.
- Any number of concurrent readers of a cold or expired entry share one fetch.
- A failed refresh keeps serving the last good version (logged, counted, and reported
  as stale in `status()`); the next attempt waits `error_retry_s`, so an outage does not
  turn every read into an API call.
- `refresh(name, seen_version=...)` is the path auth failures use: concurrent callers
  share one fetch, and a caller whose version was already replaced gets the new one
  without another call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from secretswap._logging import EventLogger
from secretswap.errors import ResourceClosedError, SwapError
from secretswap.metrics import MetricsRegistry
from secretswap.port import CacheEntryStatus, SecretVersion

__all__ = ["SecretCache"]

log = EventLogger(__name__)

Fetch = Callable[[str], Awaitable[SecretVersion]]


@dataclass(slots=True)
class _Entry:
    version: SecretVersion
    expires_at: float
    confirmed_at: float
    stale_since: float | None = None
    last_error: str | None = None
    forced_at: float | None = None


class SecretCache:
    """Caches `SecretVersion`s by name in front of a fetch function."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl_s: float,
        metrics: MetricsRegistry,
        clock: Callable[[], float] = time.monotonic,
        error_retry_s: float | None = None,
        min_forced_interval_s: float = 1.0,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._error_retry_s = min(ttl_s, 30.0) if error_retry_s is None else error_retry_s
        self._min_forced_interval_s = min_forced_interval_s
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[SecretVersion]] = {}
        self._closed = False
        self._hits = metrics.counter("CacheHits")
        self._misses = metrics.counter("CacheMisses")
        self._refresh_errors = metrics.counter("RefreshErrors")

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    async def get(self, name: str) -> SecretVersion:
        """The cached version while fresh; otherwise one shared fetch (stale on error)."""
        entry = self._entries.get(name)
        if entry is not None and self._clock() < entry.expires_at:
            self._hits.value += 1
            return entry.version
        self._misses.value += 1
        return await self._load(name, stale_ok=True)

    def get_fresh(self, name: str) -> SecretVersion | None:
        """The cached version while fresh (counted as a hit), else None; never fetches.

        The provider's hit path: a plain call, so a cached read awaits no extra coroutine.
        """
        entry = self._entries.get(name)
        if entry is not None and self._clock() < entry.expires_at:
            self._hits.value += 1
            return entry.version
        return None

    async def refresh(self, name: str, *, seen_version: str | None = None) -> SecretVersion:
        """Fetch now, bypassing the TTL. Raises on failure (the cached value stays)."""
        entry = self._entries.get(name)
        if seen_version is not None and entry is not None and entry.stale_since is None:
            if entry.version.version_id != seen_version:
                return entry.version
            forced_at = entry.forced_at
            if forced_at is not None and self._clock() - forced_at < self._min_forced_interval_s:
                return entry.version
        version = await self._load(name, stale_ok=False)
        if seen_version is not None:
            fresh = self._entries.get(name)
            if fresh is not None:
                fresh.forced_at = self._clock()
        return version

    def invalidate(self, name: str | None = None) -> None:
        """Forget one entry, or all of them; the next read fetches."""
        if name is None:
            self._entries.clear()
        else:
            self._entries.pop(name, None)

    def status(self) -> list[CacheEntryStatus]:
        """Version, age and staleness of every entry; never a value."""
        now = self._clock()
        return [
            CacheEntryStatus(
                name=name,
                version_id=entry.version.version_id,
                age_s=now - entry.confirmed_at,
                stale=entry.stale_since is not None,
                stale_for_s=0.0 if entry.stale_since is None else now - entry.stale_since,
                last_error=entry.last_error,
                created_at=entry.version.created_at,
                region=entry.version.region,
            )
            for name, entry in sorted(self._entries.items())
        ]

    async def aclose(self) -> None:
        """Cancel fetches in flight and refuse further use."""
        self._closed = True
        pending = list(self._inflight.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._entries.clear()

    async def _load(self, name: str, *, stale_ok: bool) -> SecretVersion:
        if self._closed:
            raise ResourceClosedError("secret cache is closed")
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.ensure_future(self._fetch_and_store(name))
            self._inflight[name] = task
            task.add_done_callback(self._make_done_callback(name))
        try:
            return await asyncio.shield(task)
        except Exception:
            entry = self._entries.get(name)
            if stale_ok and entry is not None:
                return entry.version
            raise

    def _make_done_callback(self, name: str) -> Callable[[asyncio.Future[SecretVersion]], None]:
        def done(task: asyncio.Future[SecretVersion]) -> None:
            if self._inflight.get(name) is task:
                del self._inflight[name]
            if not task.cancelled():
                task.exception()  # retrieved here so a fetch nobody awaited does not warn

        return done

    async def _fetch_and_store(self, name: str) -> SecretVersion:
        try:
            version = await self._fetch(name)
        except Exception as exc:
            self._refresh_errors.value += 1
            entry = self._entries.get(name)
            now = self._clock()
            if entry is not None:
                if entry.stale_since is None:
                    entry.stale_since = now
                entry.last_error = type(exc).__name__
                entry.expires_at = now + self._error_retry_s
                log.warning(
                    "secret.refresh_failed",
                    secret=name,
                    error=type(exc).__name__,
                    detail=str(exc) if isinstance(exc, SwapError) else type(exc).__name__,
                    serving_version=entry.version.version_id,
                    stale_for_s=round(now - entry.stale_since, 3),
                )
            raise
        now = self._clock()
        self._entries[name] = _Entry(
            version=version, expires_at=now + self._ttl_s, confirmed_at=now
        )
        return version
