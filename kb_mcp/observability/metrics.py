"""CloudWatch Embedded Metric Format (EMF): metrics as log lines, at no API cost.

`EmfEmitter` reads a `MetricsRegistry` and writes one JSON line per dimension set:

    {"_aws": {"Timestamp": 1700000000000, "CloudWatchMetrics": [{"Namespace": "KbMcp",
      "Dimensions": [["Service", "Environment"]],
      "Metrics": [{"Name": "CacheHits", "Unit": "Count"}, ...]}]},
     "Service": "kb-mcp", "Environment": "production", "CacheHits": 12, ...}

Counters carry the delta since the previous flush, gauges their current value. A metric
with extra dimensions (`SecretsApiCalls` by `Operation`, `SecretAgeDays` by `SecretName`)
goes on its own line with those dimension keys added, declaring two dimension sets: the
full one and the base `[Service, Environment]` rollup that the alarms watch (the largest
`SecretAgeDays` of any secret, the total of `SecretsApiCalls`). A dimension set is written only
when one of its counters moved or one of its gauges changed (or was never written), so
an idle process writes nothing. The CloudWatch agent or the awslogs driver turns each
line into metrics: no `PutMetricData` calls, no request cost.

The sink receives plain lines (never wrapped in a structlog event); in production it
writes to stdout or stderr, which the awslogs driver ships to CloudWatch Logs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from secretswap.metrics import MetricKey, MetricsRegistry

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_SERVICE", "METRIC_NAMES", "EmfEmitter", "parse_emf_line"]

log = structlog.get_logger(__name__)

DEFAULT_NAMESPACE = "KbMcp"
DEFAULT_SERVICE = "kb-mcp"
COUNT_UNIT = "Count"

METRIC_NAMES = (
    "SecretsApiCalls",
    "CacheHits",
    "CacheMisses",
    "RefreshErrors",
    "RotationsDetected",
    "RotationFailures",
    "DatabaseAuthRecoveries",
    "OpenAIAuthRecoveries",
    "PoolRotations",
    "PoolDrainTimeouts",
    "PoolReleaseFailures",
    "OpenAIClientSwaps",
    "SecretAgeDays",
    "SecretsFailovers",
    "SecretsFailbacks",
    "EmbeddingCacheHits",
    "EmbeddingCacheMisses",
    "EmbeddingCacheEvictions",
    "EmbeddingRequestsCoalesced",
)
"""Every metric kb-mcp emits (alarms in secrets/terraform/alerts.tf refer to these names;
`tests/integration/runtime` checks a booted runtime registers no other)."""

Dimensions = tuple[tuple[str, str], ...]
_BASE_DIMENSIONS = frozenset({"Service", "Environment"})


class EmfFormatError(ValueError):
    """A line is not valid CloudWatch Embedded Metric Format."""


@dataclass(slots=True)
class _Line:
    """The metrics of one dimension set, gathered during a flush."""

    values: dict[str, int | float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    changed: bool = False


class EmfEmitter:
    """Writes the registry's counters (as deltas) and gauges as EMF lines to a sink."""

    def __init__(
        self,
        registry: MetricsRegistry,
        *,
        environment: str,
        sink: Callable[[str], None],
        namespace: str = DEFAULT_NAMESPACE,
        service: str = DEFAULT_SERVICE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._environment = environment
        self._sink = sink
        self._namespace = namespace
        self._service = service
        self._clock = clock
        self._last_counts: dict[MetricKey, int] = {}
        self._last_gauges: dict[MetricKey, float] = {}

    def flush(self) -> list[str]:
        """Write (and return) one EMF line per dimension set that changed since last time."""
        lines: dict[Dimensions, _Line] = {}
        for key, counter in list(self._registry.counters.items()):
            value = counter.value
            delta = value - self._last_counts.get(key, 0)
            self._last_counts[key] = value
            line = lines.setdefault(counter.dimensions, _Line())
            line.values[counter.name] = line.values.get(counter.name, 0) + delta
            line.units[counter.name] = COUNT_UNIT
            line.changed = line.changed or delta != 0
        for key, gauge in list(self._registry.gauges.items()):
            reading = gauge.value
            previous = self._last_gauges.get(key)
            self._last_gauges[key] = reading
            line = lines.setdefault(gauge.dimensions, _Line())
            line.values[gauge.name] = reading
            line.units[gauge.name] = gauge.unit
            line.changed = line.changed or previous is None or previous != reading
        timestamp_ms = int(self._clock() * 1000)
        rendered = [
            self._render(dimensions, line, timestamp_ms)
            for dimensions, line in sorted(lines.items())
            if line.changed
        ]
        for text in rendered:
            self._sink(text)
        return rendered

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """Flush every `interval_s` until `stop` is set, then flush a last time."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        while True:
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                self._flush_logged()
                continue
            break
        self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except (OSError, ValueError) as exc:  # a closed stream must not stop the service
            log.warning("metrics.flush_failed", error=type(exc).__name__, detail=str(exc))

    def _render(self, dimensions: Dimensions, line: _Line, timestamp_ms: int) -> str:
        extra = dict(dimensions)
        base = ["Service", "Environment"]
        keys = [*base, *(k for k in extra if k not in _BASE_DIMENSIONS)]
        # A metric with extra dimensions is also rolled up to the base set, so alarms on
        # {Service, Environment} (secrets/terraform/alerts.tf) see it too.
        dimension_sets = [keys] if keys == base else [keys, base]
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": dimension_sets,
                        "Metrics": [
                            {"Name": name, "Unit": line.units[name]} for name in sorted(line.values)
                        ],
                    }
                ],
            },
            "Service": self._service,
            "Environment": self._environment,
        }
        document.update(extra)
        for name in sorted(line.values):
            value = line.values[name]
            document[name] = int(value) if line.units[name] == COUNT_UNIT else value
        return json.dumps(document, separators=(",", ":"))


def parse_emf_line(line: str) -> dict[str, Any]:
    """Parse and validate one EMF line; raise `ValueError` naming what is wrong.

    Checks what CloudWatch checks: a `_aws` block with an integer millisecond timestamp,
    every declared metric present as a top-level number, every dimension key present as
    a top-level string.
    """
    document = json.loads(line)
    if not isinstance(document, dict):
        raise EmfFormatError("emf line is not a json object")
    meta = document.get("_aws")
    if not isinstance(meta, dict):
        raise EmfFormatError("emf line has no _aws object")
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
        raise EmfFormatError("emf _aws.Timestamp must be a positive integer of milliseconds")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        raise EmfFormatError("emf _aws.CloudWatchMetrics must be a non-empty list")
    for directive in directives:
        if not isinstance(directive.get("Namespace"), str) or not directive["Namespace"]:
            raise EmfFormatError("emf directive has no namespace")
        for dimension_set in directive.get("Dimensions", []):
            for key in dimension_set:
                if not isinstance(document.get(key), str):
                    raise EmfFormatError(f"emf dimension {key} is not a top-level string")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or not metrics:
            raise EmfFormatError("emf directive has no metrics")
        for metric in metrics:
            name = metric.get("Name")
            value = document.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise EmfFormatError(f"emf metric {name} is not a top-level number")
    return document
