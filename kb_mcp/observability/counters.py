"""In-process counters and gauges (`secretswap.metrics`, re-exported): one registry per
runtime, owned by the supervisor; the EMF emitter (`metrics.py`) reads deltas."""

from secretswap.metrics import Counter, Gauge, MetricKey, MetricsRegistry

__all__ = ["Counter", "Gauge", "MetricKey", "MetricsRegistry"]
