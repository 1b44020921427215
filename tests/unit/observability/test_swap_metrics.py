"""`SwapMetrics`: the hot-swap core's events counted under kb-mcp's CloudWatch names."""

from __future__ import annotations

from secretswap import HotSwapEvent
from secretswap.metrics import MetricsRegistry
from secretswap.observer import EventKind

from kb_mcp.observability.metrics import METRIC_NAMES
from kb_mcp.observability.swap_metrics import SwapMetrics

PG = "kb-mcp/test/postgres-credentials"
KEY = "kb-mcp/test/openai-api-key"


def _event(kind: EventKind, secret: str = PG) -> HotSwapEvent:
    return HotSwapEvent(kind=kind, at=0.0, secret=secret, version_id="v1")


def test_swaps_and_drain_timeouts_are_registered_at_zero_and_counted() -> None:
    """The pool's counters exist before any rotation; each event adds one, others add none."""
    registry = MetricsRegistry()
    count = SwapMetrics(registry, swaps="PoolRotations", drain_timeouts="PoolDrainTimeouts")
    assert (registry.total("PoolRotations"), registry.total("PoolDrainTimeouts")) == (0, 0)
    assert {name for name, _ in registry.counters} == {"PoolRotations", "PoolDrainTimeouts"}
    kinds: tuple[EventKind, ...] = ("poll", "detected", "swapped", "closed", "drain_timeout")
    for kind in (*kinds, "swapped"):
        count(_event(kind))
    assert (registry.total("PoolRotations"), registry.total("PoolDrainTimeouts")) == (2, 1)


def test_recoveries_are_counted_per_secret_on_first_use() -> None:
    """A `recovering` event counts its secret's metric; an unmapped secret counts nothing."""
    registry = MetricsRegistry()
    count = SwapMetrics(
        registry, recoveries={PG: "DatabaseAuthRecoveries", KEY: "OpenAIAuthRecoveries"}
    )
    assert registry.counters == {}  # no zero recovery counter before the first one
    count(_event("recovering", PG))
    count(_event("recovering", PG))
    count(_event("recovering", KEY))
    count(_event("recovering", "someone/else"))
    assert registry.total("DatabaseAuthRecoveries") == 2
    assert registry.total("OpenAIAuthRecoveries") == 1
    assert {name for name, _ in registry.counters} <= set(METRIC_NAMES)
