"""In-process counters and gauges, cheap enough for the cache's hit path.

Components increment `Counter.value` directly; whoever publishes metrics reads them (an
application's emitter reads deltas at each flush). One `MetricsRegistry` per application. The core
counts `RotationsDetected`, `RotationFailures` and the names its callers give it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Counter", "Gauge", "MetricKey", "MetricsRegistry"]

MetricKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class Counter:
    """A monotonically increasing count. Increment with `counter.value += n`."""

    name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    value: int = 0


@dataclass(slots=True)
class Gauge:
    """A value that goes up and down; the last `set` wins."""

    name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    value: float = 0.0
    unit: str = "None"

    def set(self, value: float) -> None:
        self.value = value


@dataclass(slots=True)
class MetricsRegistry:
    """Named counters and gauges, each identified by name plus dimensions."""

    counters: dict[MetricKey, Counter] = field(default_factory=dict)
    gauges: dict[MetricKey, Gauge] = field(default_factory=dict)

    def counter(self, name: str, **dimensions: str) -> Counter:
        """The counter for `name` and `dimensions`, created at zero on first use."""
        key: MetricKey = (name, tuple(sorted(dimensions.items())))
        existing = self.counters.get(key)
        if existing is None:
            existing = self.counters[key] = Counter(name, key[1])
        return existing

    def gauge(self, name: str, *, unit: str = "None", **dimensions: str) -> Gauge:
        """The gauge for `name` and `dimensions`, created at zero on first use."""
        key: MetricKey = (name, tuple(sorted(dimensions.items())))
        existing = self.gauges.get(key)
        if existing is None:
            existing = self.gauges[key] = Gauge(name, key[1], unit=unit)
        return existing

    def total(self, name: str) -> int:
        """Sum of a counter over all its dimension values (handy in tests and reports)."""
        return sum(c.value for (n, _), c in self.counters.items() if n == name)
