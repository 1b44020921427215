"""A fleet of runtimes watching the same two secrets: propagation of a rotation, poll spread.

N runtimes live in one process, each with its own secrets provider, pool (min 1, max 2)
and OpenAI client, all started at the same instant (the worst case: a fleet restarted at
once). Reported:

- how their polls spread over time with the product's +-10 % jitter, against a control
  run with the jitter off (max polls in any 100 ms bucket vs the mean per bucket, and the
  spread of each poll round across the fleet);
- Secrets Manager calls per secret per TTL per instance in steady state;
- after one rotation of each secret, how long until every runtime uses the new version
  (p50 and max of the delay from AWSCURRENT moving to each runtime's swap).

    python -m bench.bench_fleet [--quick] [--json] [--runtimes 50] [--ttl 5]
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from secretswap import HotSwapEvent, Refresher
from secretswap.metrics import MetricsRegistry

from bench import bench_parser, finish, machine, percentile, print_table
from bench._stack import DETECTED, SwapRecorder, open_stack
from kb_mcp.runtime.supervisor import Runtime, boot_runtime
from kb_mcp.secrets.schemas import OpenAIKeySecret, PostgresCredentials

BUCKET_S = 0.1


@dataclass(frozen=True)
class Plan:
    runtimes: int
    ttl_s: float
    observe_windows: int
    control_windows: int


def _api_calls(runtimes: list[Runtime]) -> int:
    return sum(rt.metrics.total("SecretsApiCalls") for rt in runtimes)


def _spread(rounds: list[list[float]], observed_s: float) -> dict[str, Any]:
    """Bucket statistics of poll times (seconds since start) over the observation."""
    times = [t for per_runtime in rounds for t in per_runtime if t < observed_s]
    buckets = max(1, math.ceil(observed_s / BUCKET_S))
    counts = [0] * buckets
    for t in times:
        counts[min(buckets - 1, int(t / BUCKET_S))] += 1
    depth = min((len(r) for r in rounds), default=0)
    round_spread = [
        round(max(r[k] for r in rounds) - min(r[k] for r in rounds), 3) for k in range(depth)
    ]
    return {
        "polls": len(times),
        "max_per_100ms": max(counts),
        "mean_per_100ms": round(len(times) / buckets, 2),
        "busy_buckets": sum(1 for c in counts if c),
        "round_spread_s": round_spread,
    }


def _histogram(rounds: list[list[float]], observed_s: float, bucket_s: float) -> list[int]:
    counts = [0] * max(1, math.ceil(observed_s / bucket_s))
    for per_runtime in rounds:
        for t in per_runtime:
            if t < observed_s:
                counts[min(len(counts) - 1, int(t / bucket_s))] += 1
    return counts


class PollTimes:
    """An observer: when each poll round of one refresher started."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, event: HotSwapEvent) -> None:
        if event.kind == "poll":
            self.times.append(event.at)


async def _observe(
    refreshers: list[Refresher], polls: list[PollTimes], seconds: float
) -> list[list[float]]:
    """Run every refresher from the same instant; each one's poll times since then."""
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        started = time.monotonic()
        for refresher in refreshers:
            tasks.create_task(refresher.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
    return [[t - started for t in p.times if t >= started] for p in polls]


async def _control_refresher(rt: Runtime, ttl_s: float, polls: PollTimes) -> Refresher:
    """The same watches as the runtime's own refresher, with the jitter off."""
    refresher = Refresher(
        rt.provider,
        interval_s=ttl_s,
        jitter_ratio=0.0,
        metrics=MetricsRegistry(),
        observers=(polls,),
    )
    settings = rt.settings
    pg = await rt.provider.get_secret_json(settings.postgres_secret_name, PostgresCredentials)
    key = await rt.provider.get_secret_json(settings.openai_secret_name, OpenAIKeySecret)
    refresher.watch(pg, rt.pool)
    refresher.watch(key, rt.openai)
    return refresher


async def run(plan: Plan) -> dict[str, Any]:
    recorder = SwapRecorder()
    recorder.install()
    n, ttl = plan.runtimes, plan.ttl_s
    async with open_stack(max_connections=max(200, n * 5 + 20)) as stack:
        settings = stack.settings(
            cache_ttl_s=ttl,
            refresh_jitter_ratio=0.1,
            db_pool_min_size=1,
            db_pool_max_size=2,
            drain_timeout_s=10.0,
        )
        async with AsyncExitStack() as fleet:
            runtimes: list[Runtime] = []
            boot_times: list[float] = []
            polled = [PollTimes() for _ in range(n)]
            for i in range(n):
                began = time.perf_counter()
                booted = boot_runtime(settings, observers=(recorder, polled[i]))
                runtimes.append(await fleet.enter_async_context(booted))
                boot_times.append(time.perf_counter() - began)
            connections = await stack.connections()

            # Phase 1: the product's jitter, then one rotation of each secret.
            stop = asyncio.Event()
            observed_s = plan.observe_windows * ttl
            async with asyncio.TaskGroup() as tasks:
                started = time.monotonic()
                calls_before = _api_calls(runtimes)
                for rt in runtimes:
                    tasks.create_task(rt.refresher.run(stop))
                await asyncio.sleep(observed_s)
                calls = _api_calls(runtimes) - calls_before
                jittered = [[t - started for t in p.times if t >= started] for p in polled]
                pg_version = await stack.rotate_postgres()
                pg_put = time.monotonic()
                key_version = await stack.rotate_openai()
                key_put = time.monotonic()
                timeout_s = ttl * 3 + 60
                pg_swaps = await recorder.wait_for(pg_version, count=n, timeout_s=timeout_s)
                key_swaps = await recorder.wait_for(key_version, count=n, timeout_s=timeout_s)
                stop.set()
            rotation_failures = sum(rt.metrics.total("RotationFailures") for rt in runtimes)

            # Phase 2 (control): the same fleet polling with the jitter off.
            control_s = plan.control_windows * ttl
            control_polls = [PollTimes() for _ in runtimes]
            control_refreshers = [
                await _control_refresher(rt, ttl, p)
                for rt, p in zip(runtimes, control_polls, strict=True)
            ]
            control = await _observe(control_refreshers, control_polls, control_s)

    pg_seen = recorder.times(pg_version, (DETECTED,))
    key_seen = recorder.times(key_version, (DETECTED,))
    polls = sum(len(r) for r in jittered)
    intervals = [b - a for r in jittered for a, b in itertools.pairwise(r)]
    bucket_s = max(BUCKET_S, ttl / 10)
    return {
        "plan": plan.__dict__,
        "boot_s": {
            "p50": round(percentile(boot_times, 50) or 0, 3),
            "max": round(max(boot_times), 3),
            "total": round(sum(boot_times), 2),
        },
        "db_connections_idle_fleet": connections,
        "api_calls_per_secret_per_poll": round(calls / (2 * polls), 3) if polls else None,
        "poll_interval_over_ttl": (
            round(statistics.fmean(intervals) / ttl, 3) if intervals else None
        ),
        "rotation_failures": rotation_failures,
        "rotation_noticed_s": {
            "postgres": _delays([t - pg_put for t in pg_seen]),
            "openai": _delays([t - key_put for t in key_seen]),
        },
        "all_on_new_version_s": {
            "postgres": _delays([t - pg_put for t in pg_swaps]),
            "openai": _delays([t - key_put for t in key_swaps]),
        },
        "polls_jitter_10pct": _spread(jittered, observed_s),
        "polls_jitter_off": _spread(control, control_s),
        "histogram": {
            "bucket_s": bucket_s,
            "jitter_10pct": _histogram(jittered, observed_s, bucket_s),
            "jitter_off": _histogram(control, control_s, bucket_s),
        },
    }


def _delays(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) or 0, 3),
        "max": round(max(values), 3),
    }


def report(figures: dict[str, Any]) -> None:
    plan = figures["plan"]
    boot = figures["boot_s"]
    print(
        f"fleet: {plan['runtimes']} runtimes in one process, TTL {plan['ttl_s']} s, started "
        f"together; booted one after another in {boot['total']} s (p50 {boot['p50']} s, "
        f"max {boot['max']} s), {figures['db_connections_idle_fleet']} db connections idle"
    )
    rows = []
    for secret in ("postgres", "openai"):
        seen = figures["rotation_noticed_s"][secret]
        used = figures["all_on_new_version_s"][secret]
        rows.append([secret, used["n"], seen["p50"], seen["max"], used["p50"], used["max"]])
    print_table(
        f"AWSCURRENT moved -> each runtime (s); poll every {plan['ttl_s']} s +-10 %",
        ["secret", "runtimes", "noticed p50", "noticed max", "in use p50", "in use max (all)"],
        rows,
    )
    print(f"rotation failures: {figures['rotation_failures']}")
    print(
        f"GetSecretValue calls per secret per poll: {figures['api_calls_per_secret_per_poll']}; "
        f"mean time between polls / TTL: {figures['poll_interval_over_ttl']}"
    )
    spread_rows = []
    for label, key in (
        ("+-10 % (product)", "polls_jitter_10pct"),
        ("off (control)", "polls_jitter_off"),
    ):
        s = figures[key]
        rounds = ", ".join(f"{x:.2f}" for x in s["round_spread_s"][:5])
        spread_rows.append(
            [label, s["polls"], s["max_per_100ms"], s["mean_per_100ms"], s["busy_buckets"], rounds]
        )
    print_table(
        "poll rounds (all runtimes started at the same instant)",
        ["jitter", "polls", "max/100ms", "mean/100ms", "busy 100ms", "spread of round 1,2,.. (s)"],
        spread_rows,
    )
    histogram = figures["histogram"]
    bucket = histogram["bucket_s"]
    on, off = histogram["jitter_10pct"], histogram["jitter_off"]
    print(f"\npolls per {bucket:g} s bucket since start (# = one poll round of one runtime)")
    for i in range(max(len(on), len(off))):
        a = on[i] if i < len(on) else 0
        b = off[i] if i < len(off) else 0
        if a or b:
            print(f"  {i * bucket:6.1f} s  jitter {a:3d} {'#' * a:<{plan['runtimes']}}  off {b:3d}")


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "fleet benchmark")
    parser.add_argument("--runtimes", type=int, default=None)
    parser.add_argument("--ttl", type=float, default=None, help="poll interval, seconds")
    args = parser.parse_args()
    quick = bool(args.quick)
    host = machine()
    plan = Plan(
        runtimes=args.runtimes or (5 if quick else 50),
        ttl_s=args.ttl or (1.0 if quick else 5.0),
        observe_windows=2 if quick else 4,
        control_windows=2 if quick else 3,
    )
    figures = asyncio.run(run(plan))
    report(figures)
    finish("fleet", figures, quick=quick, as_json=bool(args.json), host=host)
    return 1 if figures["rotation_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
