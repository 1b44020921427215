"""Readiness of a runtime: which secrets are loaded (versions and ages, never values),
whether the database answers, and whether the staleness budget is exceeded.

`ready` is false while booting, while stopping, and when the pool has not answered for
longer than `KB_MCP_DB_OUTAGE_GRACE_S` (30 s by default; `DatabaseOutage`). A shorter
database outage (a restart, a Multi-AZ failover: typically 5-30 s) reports `degraded`
with `database` naming the error, and keeps 200: every task shares that database, so
taking them all out of the load balancer, or having ECS replace them, serves nobody (the
new tasks would meet the same database, and their boot would add load to it as it comes
back), while the requests in flight ride through it (`kb_mcp.db.ridethrough`) within
their budget. Past the grace the outage is no longer a blip, or is this task's alone (its
network path, its pool): 503, and the load balancer moves traffic to the others. The
grace is counted from the first failed probe and ends with the first one that answers.
`degraded` is true when a secret has been served stale (refreshes failing) for longer
than `max_staleness_s`: the service keeps working with the last good credentials, and
readiness says so without taking the task out of the load balancer. It is also true
while the embeddings endpoint fails (`embeddings` names the reason): kb_add and
kb_search fail, kb_get, kb_list and kb_delete still work, and every task shares the
endpoint, so taking this one out of the load balancer would help nobody.

`EmbeddingsHealth` knows the endpoint's state cheaply: real calls report their outcome
(`ObservedBackend`), and only when none happened for `fresh_s` does a readiness check
make one probe call, at most one per `probe_interval_s` (single-flight), never one
per readiness request, bounded by its own `probe_timeout_s`. A hung endpoint is seen
without waiting for any call to end: calls waiting while nothing answered for `stall_s`
are evidence too (and a call given up after that long is recorded as a failure).

`rotation_rejected` names each secret whose newest version was rejected (secret, version
id, the error's class and its cause's; never a value) until a version is put into
service; it makes readiness degraded: the service runs on credentials someone meant to
retire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from secretswap.port import CacheEntryStatus
from secretswap.refresher import RejectedVersion

from kb_mcp.embeddings.port import EmbeddingsBackend
from kb_mcp.errors import EmbeddingError

__all__ = [
    "DatabaseOutage",
    "EmbeddingsHealth",
    "ObservedBackend",
    "RuntimeHealth",
    "SecretHealth",
]


@dataclass(frozen=True, slots=True)
class SecretHealth:
    """One secret as readiness reports it."""

    name: str
    version_id: str
    in_service_version_id: str | None
    age_s: float
    stale: bool
    stale_for_s: float
    last_error: str | None
    region: str | None = None

    @classmethod
    def from_status(cls, status: CacheEntryStatus, in_service: str | None) -> SecretHealth:
        return cls(
            name=status.name,
            version_id=status.version_id,
            in_service_version_id=in_service,
            age_s=round(status.age_s, 3),
            stale=status.stale,
            stale_for_s=round(status.stale_for_s, 3),
            last_error=status.last_error,
            region=status.region,
        )


@dataclass(frozen=True, slots=True)
class RuntimeHealth:
    """What `/readyz` reports."""

    ready: bool
    degraded: bool
    stopping: bool
    database_ok: bool
    database_detail: str
    secrets_source: str
    secrets: tuple[SecretHealth, ...]
    embeddings_ok: bool = True
    embeddings_detail: str = "ok"
    rotation_rejected: tuple[RejectedVersion, ...] = ()

    @property
    def status(self) -> str:
        if not self.ready:
            return "not_ready"
        return "degraded" if self.degraded else "ready"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: versions, ages and states only, never a value."""
        return {
            "status": self.status,
            "ready": self.ready,
            "degraded": self.degraded,
            "stopping": self.stopping,
            "database": "ok" if self.database_ok else self.database_detail,
            "embeddings": "ok" if self.embeddings_ok else self.embeddings_detail,
            "secrets_source": self.secrets_source,
            "secrets": [
                {
                    "name": s.name,
                    "version_id": s.version_id,
                    "in_service_version_id": s.in_service_version_id,
                    "age_s": s.age_s,
                    "stale": s.stale,
                    "stale_for_s": s.stale_for_s,
                    "last_error": s.last_error,
                    "region": s.region,
                }
                for s in self.secrets
            ],
            "rotation_rejected": [
                {
                    "secret": r.secret,
                    "version_id": r.version_id,
                    "error": r.error,
                    "cause": r.cause,
                }
                for r in self.rotation_rejected
            ],
        }


async def probe_quietly(probe: Any, timeout_s: float) -> tuple[bool, str]:
    """Run an async probe; (True, "ok") or (False, the error class name)."""
    try:
        await asyncio.wait_for(probe(), timeout_s)
    except Exception as exc:  # readiness reports any failure as a state, never raises
        return False, type(exc).__name__
    return True, "ok"


@dataclass(eq=False)
class DatabaseOutage:
    """How long the database has not answered readiness probes (module doc: the grace)."""

    grace_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _since: float | None = None

    def record(self, ok: bool) -> bool:
        """Note a probe's outcome; True while the task should stay in service."""
        if ok:
            self._since = None
            return True
        now = self.clock()
        if self._since is None:
            self._since = now
        return now - self._since < self.grace_s


@dataclass(eq=False)
class EmbeddingsHealth:
    """The embeddings endpoint's last known state, from real calls and rare probes."""

    fresh_s: float = 30.0
    """A real call this recent speaks for the endpoint; no probe."""
    probe_interval_s: float = 60.0
    """At most one probe call per interval."""
    stall_s: float = 5.0
    """Calls waiting while nothing answered for this long: the endpoint is not answering."""
    probe_timeout_s: float = 2.0
    """A probe's own bound: readiness never waits longer for the endpoint."""
    clock: Callable[[], float] = time.monotonic
    probes: int = 0
    _state: tuple[bool, str, float] | None = None
    _last_probe: float | None = None
    _last_answer: float | None = None
    _in_flight: dict[int, float] = field(default_factory=dict)
    _calls: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def record(self, ok: bool, detail: str = "ok") -> None:
        """The outcome of a call (real or probe)."""
        now = self.clock()
        self._state = (ok, "ok" if ok else detail, now)
        self._last_answer = now

    def started(self) -> int:
        """A real call began; pass the token to `ended` whatever its outcome."""
        self._calls += 1
        self._in_flight[self._calls] = self.clock()
        return self._calls

    def ended(self, token: int, *, gave_up: bool = False) -> None:
        """A real call is over. `gave_up`: abandoned unanswered (a deadline, a client gone),
        which after `stall_s` or more is recorded as the endpoint not answering."""
        waited = self.clock() - self._in_flight.pop(token)
        if gave_up and waited >= self.stall_s:
            self._state = (
                False,
                f"embeddings not answering (a call given up after {waited:.1f} s)",
                self.clock(),
            )

    async def check(self, probe: Callable[[], Awaitable[object]]) -> tuple[bool, str]:
        """(ok, reason): a stall, the recent outcome, or one rate-limited probe."""
        if self._stalled():
            return False, self._stall_reason()
        if self._fresh():
            return self._verdict()
        async with self._lock:
            now = self.clock()
            due = self._last_probe is None or now - self._last_probe >= self.probe_interval_s
            if not self._fresh() and due:
                self._last_probe = now
                self.probes += 1
                try:
                    await asyncio.wait_for(probe(), self.probe_timeout_s)
                except TimeoutError:
                    self.record(
                        False, f"embeddings not answering (probe: {self.probe_timeout_s} s)"
                    )
                except Exception as exc:  # readiness reports any failure as a state
                    self.record(False, _reason(exc))
                else:
                    self.record(True)
        if self._stalled():
            return False, self._stall_reason()
        return self._verdict()

    def _stalled(self) -> bool:
        """Calls have waited longer than `stall_s` and nothing answered meanwhile."""
        if not self._in_flight:
            return False
        now = self.clock()
        oldest = min(self._in_flight.values())
        quiet_since = oldest if self._last_answer is None else max(oldest, self._last_answer)
        return now - quiet_since >= self.stall_s

    def _stall_reason(self) -> str:
        return (
            f"embeddings not answering ({len(self._in_flight)} call(s) waiting, "
            f"none answered for {self.stall_s} s)"
        )

    def _fresh(self) -> bool:
        return self._state is not None and self.clock() - self._state[2] < self.fresh_s

    def _verdict(self) -> tuple[bool, str]:
        if self._state is None:
            return True, "ok"  # nothing known yet: the boot probe passed
        return self._state[0], self._state[1]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EmbeddingError):
        return f"embeddings failing ({type(exc).__name__}: {exc})"[:300]
    return f"embeddings failing ({type(exc).__name__})"


class ObservedBackend:
    """An `EmbeddingsBackend` that reports each call's outcome to an `EmbeddingsHealth`."""

    def __init__(self, backend: EmbeddingsBackend, health: EmbeddingsHealth) -> None:
        self._backend = backend
        self._health = health

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        token = self._health.started()
        try:
            vectors = await self._backend.create_embeddings(
                texts, model=model, dimensions=dimensions
            )
        except EmbeddingError as exc:
            self._health.ended(token)
            self._health.record(False, _reason(exc))
            raise
        except BaseException:  # given up (a deadline, a client gone): a stall is evidence
            self._health.ended(token, gave_up=True)
            raise
        self._health.ended(token)
        self._health.record(True)
        return vectors
