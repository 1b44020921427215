"""Rotation under load: requests, failures, latency in steady state vs around swaps.

N workers run a mix of database queries (short, long, in a transaction) and embedding
calls through one in-process runtime while each secret rotates K times by polling (the
refresher's TTL), then K times with an immediate `refresher.trigger()` (what SIGHUP
does). Reported: requests and failures; p50/p95/p99 latency of requests in steady state
vs those overlapping a window of +-W seconds around any swap; time from AWSCURRENT
moving (`put_secret_value` returned) to the new credential in use (the swap, as seen by
an observer);
boot time to ready (`boot_runtime` entered).

    python -m bench.bench_rotation [--quick] [--json] [--workers 32] [--rotations 10]

Exits 1 when any request failed (the figure that must be zero).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench import bench_parser, finish, latency_summary, machine, percentile, print_table
from bench._stack import BenchStack, SwapRecorder, open_stack
from bench._workload import choose_kind, runtime_call
from kb_mcp.hotswap.load import LoadStats, run_worker, split_around
from kb_mcp.runtime.supervisor import Runtime, boot_runtime

KINDS = ("short", "long", "transaction", "embedding")


@dataclass(frozen=True)
class Plan:
    workers: int
    rotations: int
    ttl_s: float
    spacing_s: float
    window_s: float
    warmup_s: float
    pool_max: int


@dataclass
class Propagation:
    """Seconds from put_secret_value returning to the swap, per secret and trigger mode."""

    delays: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, kind: str, mode: str, delay_s: float) -> None:
        self.delays.setdefault((kind, mode), []).append(delay_s)


async def _rotate_both(
    stack: BenchStack,
    runtime: Runtime,
    recorder: SwapRecorder,
    propagation: Propagation,
    *,
    mode: str,
    timeout_s: float,
) -> None:
    pg_version = await stack.rotate_postgres()
    pg_put = stack.last_put_at
    key_version = await stack.rotate_openai()
    key_put = stack.last_put_at  # not after the old keys' revocation, which follows the put
    if mode == "trigger":
        runtime.refresher.trigger()
    (pg_swap,) = await recorder.wait_for(pg_version, timeout_s=timeout_s)
    (key_swap,) = await recorder.wait_for(key_version, timeout_s=timeout_s)
    propagation.add("postgres", mode, pg_swap - pg_put)
    propagation.add("openai", mode, key_swap - key_put)


async def _drive(
    stack: BenchStack, runtime: Runtime, recorder: SwapRecorder, plan: Plan
) -> Propagation:
    """Steady state, K polled rotations, K triggered ones, each `spacing_s` apart."""
    propagation = Propagation()
    timeout_s = plan.ttl_s * 3 + 30
    await asyncio.sleep(plan.spacing_s)
    for mode in ("poll", "trigger"):
        for _ in range(plan.rotations):
            began = time.monotonic()
            await _rotate_both(
                stack, runtime, recorder, propagation, mode=mode, timeout_s=timeout_s
            )
            await asyncio.sleep(max(0.0, plan.spacing_s - (time.monotonic() - began)))
    return propagation


async def run(plan: Plan) -> dict[str, Any]:
    recorder = SwapRecorder()
    recorder.install()
    async with open_stack() as stack:
        settings = stack.settings(
            cache_ttl_s=plan.ttl_s,
            refresh_jitter_ratio=0.1,
            db_pool_min_size=2,
            db_pool_max_size=plan.pool_max,
            drain_timeout_s=10.0,
        )
        load = LoadStats()
        stop_load, stop_runtime = asyncio.Event(), asyncio.Event()
        boot_started = time.perf_counter()
        async with boot_runtime(settings, observers=(recorder,)) as runtime:
            boot_s = time.perf_counter() - boot_started
            load_started = time.monotonic()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(runtime.refresher.run(stop_runtime))
                workers = [
                    tasks.create_task(
                        run_worker(choose_kind, runtime_call(runtime), load, stop_load, seed=seed)
                    )
                    for seed in range(plan.workers)
                ]
                propagation = await _drive(stack, runtime, recorder, plan)
                stop_load.set()
                await asyncio.gather(*workers)
                load_s = time.monotonic() - load_started
                stop_runtime.set()
            rotation_failures = runtime.metrics.total("RotationFailures")
            rotations_detected = runtime.metrics.total("RotationsDetected")
        leaked = await stack.connections()
    swaps = recorder.swap_times()  # the same clock as the call records: time.monotonic()
    steady, around = split_around(
        load.records, swaps, start=load_started + plan.warmup_s, window_s=plan.window_s
    )
    return {
        "plan": plan.__dict__,
        "boot_to_ready_s": round(boot_s, 3),
        "requests": len(load.succeeded),
        "requests_per_s": round(len(load.succeeded) / load_s, 1),
        "failures": len(load.failures),
        "failure_samples": [f"{r.kind}: {r.error}" for r in load.failures[:10]],
        "swaps": len(swaps),
        "rotations_detected": rotations_detected,
        "rotation_failures": rotation_failures,
        "connections_after_shutdown": leaked,
        "steady": {k: latency_summary(v) for k, v in sorted(steady.items())},
        "around_swaps": {k: latency_summary(v) for k, v in sorted(around.items())},
        "p99_ratio_swap_vs_steady": _ratio(around["all"], steady["all"]),
        "propagation": {
            f"{kind}_{mode}": _delays(values)
            for (kind, mode), values in sorted(propagation.delays.items())
        },
    }


def _ratio(around: list[float], steady: list[float]) -> float | None:
    a, s = percentile(around, 99), percentile(steady, 99)
    return None if a is None or not s else round(a / s, 2)


def _delays(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": round((percentile(values, 50) or 0) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
    }


def report(figures: dict[str, Any]) -> None:
    plan = figures["plan"]
    print(
        f"rotation under load: {plan['workers']} workers, {plan['rotations']} polled + "
        f"{plan['rotations']} triggered rotations of each secret, TTL {plan['ttl_s']} s "
        f"(+-10 % jitter), pool max {plan['pool_max']}, swap window +-{plan['window_s']} s"
    )
    print_table(
        "requests",
        ["requests", "req/s", "failures", "swaps", "rotation failures", "leaked conns"],
        [
            [
                figures["requests"],
                figures["requests_per_s"],
                figures["failures"],
                figures["swaps"],
                figures["rotation_failures"],
                figures["connections_after_shutdown"],
            ]
        ],
    )
    for sample in figures["failure_samples"]:
        print(f"  failure: {sample}")
    rows = []
    for label, key in (("steady", "steady"), ("around swaps", "around_swaps")):
        for kind, summary in figures[key].items():
            rows.append(
                [label, kind, summary["n"], summary["p50_ms"], summary["p95_ms"], summary["p99_ms"]]
            )
    print_table("latency (ms)", ["phase", "kind", "n", "p50", "p95", "p99"], rows)
    print(f"p99 around swaps / p99 steady: {figures['p99_ratio_swap_vs_steady']}")
    print_table(
        "AWSCURRENT moved -> new credential in use (ms)",
        ["secret", "how noticed", "n", "p50", "min", "max"],
        [
            [
                name.rsplit("_", 1)[0],
                f"poll every {plan['ttl_s']} s" if name.endswith("poll") else "trigger (SIGHUP)",
                d["n"],
                d["p50_ms"],
                d["min_ms"],
                d["max_ms"],
            ]
            for name, d in figures["propagation"].items()
        ],
    )
    print(f"\nboot to ready (boot_runtime entered): {figures['boot_to_ready_s'] * 1000:.0f} ms")


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "rotation benchmark")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--rotations", type=int, default=None)
    parser.add_argument("--ttl", type=float, default=None, help="poll interval, seconds")
    args = parser.parse_args()
    quick = bool(args.quick)
    host = machine()
    plan = Plan(
        workers=args.workers or (8 if quick else 32),
        rotations=args.rotations or (1 if quick else 10),
        ttl_s=args.ttl or (0.5 if quick else 1.0),
        spacing_s=1.0 if quick else 4.0,
        window_s=0.5 if quick else 1.0,
        warmup_s=0.5 if quick else 1.0,
        pool_max=10,
    )
    figures = asyncio.run(run(plan))
    report(figures)
    finish("rotation", figures, quick=quick, as_json=bool(args.json), host=host)
    return 1 if figures["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
