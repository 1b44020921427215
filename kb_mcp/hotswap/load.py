"""One load-under-rotation harness: workers, call records, one percentile definition.

Shared by the zero-drop test (`tests/integration/runtime/test_zero_drop.py`), the
rotation benchmark (`bench/bench_rotation.py`) and `kb-mcp drill` (`kb_mcp.ops`): each
supplies what one call is (in-process queries and embeddings, or MCP tool calls over
HTTP); this module runs the workers, records every call, and summarises latencies the
same way everywhere: nearest-rank percentiles, steady state vs calls overlapping a
window around a swap (times from one clock, `time.monotonic()`, as `HotSwapEvent.at`).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CallRecord",
    "LoadStats",
    "percentile",
    "percentiles",
    "run_worker",
    "split_around",
]

Choose = Callable[[random.Random], str]
"""Picks the kind of the next call."""
Call = Callable[[str, random.Random, int], Awaitable[str | None]]
"""Makes one call of a kind (its rng, its sequence number); an error text, or None if ok.
Raising is a failure too."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call: its kind, when it started (`time.monotonic()`), how long, what failed."""

    kind: str
    started: float
    latency_s: float
    error: str | None

    @property
    def ended(self) -> float:
        return self.started + self.latency_s


@dataclass
class LoadStats:
    """Every call recorded by the workers (appended from one event loop: no lock needed)."""

    records: list[CallRecord] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.records)

    @property
    def failures(self) -> list[CallRecord]:
        return [r for r in self.records if r.error is not None]

    @property
    def succeeded(self) -> list[CallRecord]:
        return [r for r in self.records if r.error is None]

    def errors_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.failures:
            key = f"{record.kind}: {record.error}"[:200]
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


async def run_worker(
    choose: Choose, call: Call, stats: LoadStats, stop: asyncio.Event, *, seed: int
) -> None:
    """Call until `stop`; every call, failed or not, is recorded."""
    rng = random.Random(seed)  # noqa: S311 - workload shape, not security
    n = 0
    while not stop.is_set():
        kind = choose(rng)
        n += 1
        started = time.monotonic()
        error: str | None
        try:
            error = await call(kind, rng, n)
        except Exception as exc:  # every failure is recorded, whatever its kind
            error = f"{type(exc).__name__}: {exc}"[:300]
        stats.records.append(CallRecord(kind, started, time.monotonic() - started, error))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0-100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def percentiles(latencies: Sequence[float]) -> dict[str, float | None]:
    """Count and p50/p95/p99 in milliseconds (None when there is nothing to measure)."""

    def ms(q: float) -> float | None:
        value = percentile(latencies, q)
        return None if value is None else round(value * 1000, 2)

    return {"count": len(latencies), "p50_ms": ms(50), "p95_ms": ms(95), "p99_ms": ms(99)}


def split_around(
    records: Iterable[CallRecord], swaps: Sequence[float], *, start: float, window_s: float
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Latencies of successful calls by kind (and "all"): steady state vs overlapping any
    swap's +-`window_s` window. Calls started before `start` (warm-up) are left out."""
    steady: dict[str, list[float]] = {"all": []}
    around: dict[str, list[float]] = {"all": []}
    windows = sorted((s - window_s, s + window_s) for s in swaps)
    for record in records:
        if record.error is not None or record.started < start:
            continue
        near = any(lo <= record.ended and record.started <= hi for lo, hi in windows)
        bucket = around if near else steady
        bucket["all"].append(record.latency_s)
        bucket.setdefault(record.kind, []).append(record.latency_s)
    return steady, around
