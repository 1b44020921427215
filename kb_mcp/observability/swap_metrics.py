"""kb-mcp's hot-swap metrics, counted from the core's events.

The hot-swap library names no metric: it tells observers what happened
(`secretswap.HotSwapEvent`). `SwapMetrics` is the observer that turns those events into
kb-mcp's CloudWatch counters (`METRIC_NAMES` in `metrics.py`): `PoolRotations` and
`OpenAIClientSwaps` per swap, `PoolDrainTimeouts` per drain that ran out, and
`DatabaseAuthRecoveries` / `OpenAIAuthRecoveries` per auth-failure recovery of a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from secretswap.metrics import Counter, MetricsRegistry
from secretswap.observer import HotSwapEvent

__all__ = ["SwapMetrics"]


class SwapMetrics:
    """An observer counting swaps, drain timeouts and recoveries under kb-mcp's names.

    `swaps` and `drain_timeouts` name the counters of one resource's `HotSwap` (registered
    at zero now, so a runtime that never rotated still reports them); `recoveries` maps a
    secret name to the counter of its recoveries (the refresher's `recovering` events;
    registered on the first one).
    """

    def __init__(
        self,
        registry: MetricsRegistry,
        *,
        swaps: str = "",
        drain_timeouts: str = "",
        recoveries: Mapping[str, str] | None = None,
    ) -> None:
        self._registry = registry
        self._swaps: Counter | None = registry.counter(swaps) if swaps else None
        self._drain_timeouts: Counter | None = (
            registry.counter(drain_timeouts) if drain_timeouts else None
        )
        self._recoveries = MappingProxyType(dict(recoveries or {}))

    def __call__(self, event: HotSwapEvent) -> None:
        if event.kind == "swapped" and self._swaps is not None:
            self._swaps.value += 1
        elif event.kind == "drain_timeout" and self._drain_timeouts is not None:
            self._drain_timeouts.value += 1
        elif event.kind == "recovering":
            name = self._recoveries.get(event.secret)
            if name:
                self._registry.counter(name).value += 1
