"""Which region the Secrets Manager adapter reads from: the primary, or a replica in failover.

Secrets Manager replicates a secret (same name, same `VersionId`s) to the regions listed in
its `replica` blocks. `RegionFailover` holds the one piece of state that failover needs, the
region reads currently go to, and decides the order in which a read tries the regions:

- normally: the primary with the full retry budget, then each replica in configured order;
- failed over: the replica in use first; once every `failback_interval_s` one read tries the
  primary first with a single short attempt (`probe=True`), and the first read the primary
  answers moves reads back to it;
- every replica failing too: the primary is tried last with the full budget.

Only the unavailable class (unreachable, timeout, 5xx, throttling past the retry budget)
moves a read to the next region: not-found and access-denied are real answers and are
raised from the region that gave them. Each move is logged (`secrets.region_failover`,
`secrets.region_returned`) and counted (`SecretsFailovers`, `SecretsFailbacks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secretswap._logging import EventLogger
from secretswap.metrics import MetricsRegistry

__all__ = ["ReadAttempt", "Region", "RegionFailover"]

log = EventLogger(__name__)


@dataclass(frozen=True, slots=True)
class Region:
    """A region the secrets are read from, and its endpoint override (emulators only)."""

    name: str
    endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class ReadAttempt:
    """One step of a read: the region; a short probe of the primary (`probe`); or the
    primary's first try, which gives up early once another read has failed over (`yields`)."""

    region: Region
    probe: bool = False
    yields: bool = False


class RegionFailover:
    """The region reads go to, and the order a read tries the regions in."""

    def __init__(
        self,
        primary: Region,
        replicas: Sequence[Region] = (),
        *,
        failback_interval_s: float = 30.0,
        metrics: MetricsRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [primary.name, *(r.name for r in replicas)]
        if len(set(names)) != len(names):
            raise ValueError("a region is listed twice among the primary and its replicas")
        if failback_interval_s <= 0:
            raise ValueError("failback_interval_s must be positive")
        self.primary = primary
        self.replicas = tuple(replicas)
        self._failback_interval_s = failback_interval_s
        self._clock = clock
        self._active = primary
        self._next_probe_at = 0.0
        metrics = metrics or MetricsRegistry()
        self._failovers = metrics.counter("SecretsFailovers")
        self._failbacks = metrics.counter("SecretsFailbacks")

    @property
    def active(self) -> Region:
        """The region reads currently go to."""
        return self._active

    @property
    def failed_over(self) -> bool:
        return self._active is not self.primary

    def plan(self) -> list[ReadAttempt]:
        """The regions one read tries, in order (see the module docstring)."""
        if not self.failed_over:
            return [
                ReadAttempt(self.primary, yields=True),
                *(ReadAttempt(r) for r in self.replicas),
            ]
        start = self.replicas.index(self._active)
        replicas = [ReadAttempt(r) for r in (*self.replicas[start:], *self.replicas[:start])]
        now = self._clock()
        if now >= self._next_probe_at:
            # One read per interval probes the primary; the others keep to the replica.
            self._next_probe_at = now + self._failback_interval_s
            return [ReadAttempt(self.primary, probe=True), *replicas]
        return [*replicas, ReadAttempt(self.primary)]

    def answered(self, region: Region, *, secret: str, after_error: str | None) -> None:
        """A read succeeded in `region`, after an unavailable error elsewhere or not.

        The primary answering moves reads back to it. A replica answering moves reads there
        only when this read saw an earlier region fail: a read planned before the primary
        returned, and served by the replica as planned, says nothing new.
        """
        if region is self._active:
            return
        previous = self._active
        if region is self.primary:
            self._active = region
            self._failbacks.value += 1
            log.info(
                "secrets.region_returned",
                region=region.name,
                from_region=previous.name,
                secret=secret,
            )
            return
        if after_error is None:
            return
        self._active = region
        self._failovers.value += 1
        self._next_probe_at = self._clock() + self._failback_interval_s
        log.warning(
            "secrets.region_failover",
            region=region.name,
            from_region=previous.name,
            secret=secret,
            error=after_error,
        )
