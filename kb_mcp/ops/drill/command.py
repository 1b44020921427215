"""`kb-mcp drill`: rotate both secrets under load and prove no request failed.

Against a running server (the local stack by default, `--url` for staging) it drives
load with MCP clients (`kb_add`/`kb_search`, configurable concurrency and mix), rotates
each secret K times with the same four-step rotation `kb-mcp secrets rotate` uses, and
measures: requests, failures (with their errors), latency p50/p95/p99 in steady state
(a baseline before the first rotation, and the time between swaps) and in the seconds
around each swap, and for each rotation the time until `/readyz` shows the new version
in service. A live display while it runs, a JSON report and a plain summary at the end;
exit 1 on any failed request or a rotation never picked up.

Every document the drill's `kb_add` calls stored is deleted at the end (`kb_delete`) and
the summary says how many, unless `--keep`: a drill leaves the knowledge base as it was.
Without `--url` it needs a running `kb-mcp dev` (its `stack.json`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import structlog
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.table import Table

from kb_mcp.config import Settings, load_settings
from kb_mcp.errors import EXIT_USAGE, KbMcpError
from kb_mcp.ops.aws import setup_cli_logging
from kb_mcp.ops.drill.load import (
    DrillStats,
    LoadStats,
    Workload,
    delete_documents,
    percentiles,
    run_worker,
)
from kb_mcp.ops.local_stack import find_local_stack
from kb_mcp.ops.rotation.openai_key import rotate_openai
from kb_mcp.ops.rotation.postgres import rotate_postgres

__all__ = ["DrillOptions", "DrillReport", "register", "run_drill"]

log = structlog.get_logger(__name__)

WINDOW_BEFORE_S = 0.5
WINDOW_AFTER_S = 1.0


@dataclass(frozen=True)
class DrillOptions:
    """What to drill and how hard."""

    url: str
    token: str | None = None
    concurrency: int = 16
    rotations: int = 3
    rotate: tuple[str, ...] = ("postgres", "openai")
    workload: Workload = field(default_factory=Workload)
    warmup_s: float = 10.0
    """Steady baseline before the first rotation, in seconds."""
    interval_s: float = 1.0
    cooldown_s: float = 2.0
    pickup_timeout_s: float = 120.0
    nudge_pid: int | None = None
    """Send SIGHUP to this pid after each rotation (local only): measures the fast path."""
    openai_keys: tuple[SecretStr, ...] = ()
    generate_openai_keys: bool = False
    """The target accepts any key the secret holds (a local stack): generate new ones."""
    keep: bool = False
    """Leave the documents the drill added (default: delete them at the end)."""
    progress: bool = True


@dataclass
class RotationRecord:
    """One rotation as the drill saw it: when AWSCURRENT moved, when it was in use."""

    secret: str
    old_version_id: str
    new_version_id: str
    moved_at_s: float
    pickup_s: float | None


@dataclass
class DrillReport:
    """The evidence: counts, latencies, rotations, verdict. Never a secret value."""

    target: str
    concurrency: int
    duration_s: float
    requests: int
    failures: int
    errors: dict[str, int]
    latency: dict[str, dict[str, float | None]]
    p99_ratio_swap_vs_steady: float | None
    rotations: list[RotationRecord]
    passed: bool
    documents_added: int = 0
    documents_removed: int = 0
    documents_not_removed: int = 0
    kept: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = "pass" if self.passed else "fail"
        return data

    def summary(self) -> str:
        lat = self.latency
        lines = [
            f"drill against {self.target}: {'PASS' if self.passed else 'FAIL'}",
            f"  requests {self.requests}, failures {self.failures}, "
            f"concurrency {self.concurrency}, {self.duration_s:.1f} s",
        ]
        for name in ("steady", "swap", "all"):
            p = lat[name]
            lines.append(
                f"  {name:<6} n={p['count']} p50={p['p50_ms']} ms p95={p['p95_ms']} ms "
                f"p99={p['p99_ms']} ms"
            )
        if self.p99_ratio_swap_vs_steady is not None:
            lines.append(f"  p99 swap/steady ratio: {self.p99_ratio_swap_vs_steady:.2f}")
        for r in self.rotations:
            pickup = "never" if r.pickup_s is None else f"{r.pickup_s:.2f} s"
            lines.append(f"  rotated {r.secret} -> {r.new_version_id}: in service after {pickup}")
        for error, count in list(self.errors.items())[:10]:
            lines.append(f"  failure x{count}: {error}")
        if self.kept:
            lines.append(f"  kept the {self.documents_added} documents it added (--keep)")
        else:
            lines.append(
                f"  removed the {self.documents_removed} documents it added"
                + (f"; {self.documents_not_removed} could not be removed (tag drill)"
                   if self.documents_not_removed else "")
            )  # fmt: skip
        return "\n".join(lines)


def readyz_url(mcp_url: str) -> str:
    """`/readyz` beside the MCP endpoint."""
    parts = urlsplit(mcp_url)
    return urlunsplit((parts.scheme, parts.netloc, "/readyz", "", ""))


async def _in_service(http: httpx2.AsyncClient, url: str) -> dict[str, str | None]:
    try:
        response = await http.get(url)
        data = response.json()
    except (httpx2.HTTPError, ValueError):
        return {}
    return {s["name"]: s.get("in_service_version_id") for s in data.get("secrets", [])}


async def _wait_for_pickup(
    http: httpx2.AsyncClient, url: str, secret: str, version: str, timeout_s: float
) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if (await _in_service(http, url)).get(secret) == version:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def _rotate_once(
    settings: Settings, target: str, options: DrillOptions, round_index: int
) -> tuple[str, str, str]:
    if target == "postgres":
        result = await rotate_postgres(settings)
    else:
        if options.openai_keys:
            key = options.openai_keys[round_index % len(options.openai_keys)]
            result = await rotate_openai(settings, new_key=key)
        else:
            result = await rotate_openai(settings, new_key=None, generate=True)
    return result.secret_name, result.old_version_id, result.new_version_id


def _table(stats: LoadStats, started: float, rotations: list[RotationRecord]) -> Table:
    elapsed = time.monotonic() - started
    table = Table(title="kb-mcp drill", show_header=False)
    table.add_row("elapsed", f"{elapsed:.1f} s")
    table.add_row("requests", str(stats.total))
    table.add_row("failures", str(len(stats.failures)))
    table.add_row("rate", f"{stats.total / elapsed:.0f}/s" if elapsed > 0 else "-")
    table.add_row("rotations", str(len(rotations)))
    return table


async def run_drill(options: DrillOptions, settings: Settings) -> DrillReport:
    """Run the load, the rotations and the measurements; the report."""
    stats = DrillStats()
    stop = asyncio.Event()
    rotations: list[RotationRecord] = []
    ready_url = readyz_url(options.url)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
    console = Console(stderr=True)
    async with httpx2.AsyncClient(headers=headers, timeout=10.0) as http:
        live = (
            Live(
                _table(stats, started, rotations),
                console=console,
                refresh_per_second=4,
                transient=False,
            )
            if options.progress
            else None
        )
        if live is not None:
            live.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                workers = [
                    tasks.create_task(
                        run_worker(
                            options.url,
                            options.token,
                            options.workload,
                            stats,
                            stop,
                            worker=i,
                            seed=i,
                        )
                    )
                    for i in range(options.concurrency)
                ]
                await asyncio.sleep(options.warmup_s)
                for round_index in range(options.rotations):
                    for kind in options.rotate:
                        try:
                            name, old, new = await _rotate_once(
                                settings, kind, options, round_index
                            )
                        except KbMcpError as exc:
                            log.error("drill.rotation_failed", target=kind, error=str(exc))
                            rotations.append(
                                RotationRecord(kind, "", "", time.monotonic() - started, None)
                            )
                            continue
                        moved_at = time.monotonic() - started
                        if options.nudge_pid is not None:
                            os.kill(options.nudge_pid, signal.SIGHUP)
                        pickup = await _wait_for_pickup(
                            http, ready_url, name, new, options.pickup_timeout_s
                        )
                        rotations.append(RotationRecord(name, old, new, moved_at, pickup))
                        log.info("drill.rotation", secret=name, new_version_id=new, pickup_s=pickup)
                        if live is not None:
                            live.update(_table(stats, started, rotations))
                        await asyncio.sleep(options.interval_s)
                await asyncio.sleep(options.cooldown_s)
                stop.set()
                await asyncio.gather(*workers)
        finally:
            stop.set()
            if live is not None:
                live.update(_table(stats, started, rotations))
                live.stop()
    report = _report(options, stats, rotations, time.monotonic() - started, started)
    report.documents_added = len(stats.added_ids)
    report.kept = options.keep
    if not options.keep and stats.added_ids:
        removed, failed = await delete_documents(options.url, options.token, stats.added_ids)
        report.documents_removed, report.documents_not_removed = removed, failed
    return report


def _report(
    options: DrillOptions,
    stats: LoadStats,
    rotations: list[RotationRecord],
    duration_s: float,
    started: float,
) -> DrillReport:
    # Around the swap itself (when /readyz first showed the new version), not the wait for
    # the next refresh before it: until then the old resource serves, which is steady state.
    windows = [
        (r.moved_at_s + r.pickup_s - WINDOW_BEFORE_S, r.moved_at_s + r.pickup_s + WINDOW_AFTER_S)
        for r in rotations
        if r.pickup_s is not None
    ]
    steady: list[float] = []
    swap: list[float] = []
    for record in stats.records:
        if record.error is not None:
            continue
        at = record.started - started
        (swap if any(lo <= at <= hi for lo, hi in windows) else steady).append(record.latency_s)
    lat = {
        "steady": percentiles(steady),
        "swap": percentiles(swap),
        "all": percentiles(steady + swap),
    }
    s99, w99 = lat["steady"]["p99_ms"], lat["swap"]["p99_ms"]
    ratio = round(w99 / s99, 3) if s99 and w99 else None
    failures = len(stats.failures)
    passed = failures == 0 and stats.total > 0 and all(r.pickup_s is not None for r in rotations)
    return DrillReport(
        target=options.url,
        concurrency=options.concurrency,
        duration_s=round(duration_s, 3),
        requests=stats.total,
        failures=failures,
        errors=stats.errors_by_kind(),
        latency=lat,
        p99_ratio_swap_vs_steady=ratio,
        rotations=rotations,
        passed=passed,
    )


class NoTargetError(ValueError):
    """No --url and no running local stack."""


def _options_from_args(args: argparse.Namespace) -> tuple[DrillOptions, Settings]:
    nudge = None
    generate = False
    if args.url:
        url = str(args.url)
    else:
        stack = find_local_stack(Path(args.stack_dir))
        if stack is None:
            raise NoTargetError(
                f"no local stack is running (no live {Path(args.stack_dir) / 'stack.json'}): "
                "start `kb-mcp dev`, or pass --url for another server"
            )
        # The rotations act on the stack's emulators: this process's AWS settings are its.
        os.environ.update(stack.environment)
        url, generate = stack.mcp_url, stack.generated_openai_keys
        if args.nudge:
            nudge = stack.pid
    token = os.environ.get(args.token_env) if args.token_env else None
    keys = (
        tuple(SecretStr(os.environ[name]) for name in args.openai_keys_from_env.split(",") if name)
        if args.openai_keys_from_env
        else ()
    )
    rotate = ("postgres", "openai") if args.rotate == "both" else (args.rotate,)
    options = DrillOptions(
        url=url,
        token=token,
        concurrency=args.concurrency,
        rotations=args.rotations,
        rotate=rotate,
        workload=Workload.parse(args.mix),
        warmup_s=args.warmup,
        interval_s=args.interval,
        cooldown_s=args.cooldown,
        pickup_timeout_s=args.pickup_timeout,
        nudge_pid=nudge,
        openai_keys=keys,
        generate_openai_keys=generate and not keys,
        keep=args.keep,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    return options, load_settings()


def expected_duration(options: DrillOptions, ttl_s: float) -> tuple[float, float]:
    """(typical, longest) run time in seconds: pickups take about half a TTL, at most one."""
    rounds = options.rotations * len(options.rotate)
    fixed = options.warmup_s + options.cooldown_s + rounds * options.interval_s
    longest_pickup = min(ttl_s, options.pickup_timeout_s)
    return fixed + rounds * longest_pickup / 2, fixed + rounds * longest_pickup


def _load_note() -> str:
    """` (load average 3.1 on 2 CPUs)` where the platform says it, else nothing."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        return ""
    return f" (load average {load:.1f} on {os.cpu_count() or 1} CPUs)"


def _run(args: argparse.Namespace) -> int:
    try:
        options, settings = _options_from_args(args)
    except ValueError as exc:  # NoTargetError, or a bad --mix
        sys.stderr.write(f"kb-mcp drill: {exc}\n")
        return EXIT_USAGE
    if "openai" in options.rotate and not options.openai_keys and not options.generate_openai_keys:
        sys.stderr.write(
            "kb-mcp drill: rotating the OpenAI key outside the local stack needs new keys: "
            "pass --openai-keys-from-env VAR1,VAR2 (keys created in the OpenAI console), or "
            "--rotate postgres\n"
        )
        return EXIT_USAGE
    # Logs (the rotations' events) go to stderr: stdout is the drill's summary alone.
    setup_cli_logging(settings)
    typical, longest = expected_duration(options, settings.cache_ttl_s)
    sys.stderr.write(
        f"kb-mcp drill: {options.rotations} rotation(s) of {', '.join(options.rotate)} against "
        f"{options.url}; expect about {typical:.0f} s, {longest:.0f} s if every pickup waits "
        f"a whole refresh interval ({settings.cache_ttl_s:g} s), plus the rotation steps "
        f"themselves: longer on a busy machine{_load_note()}\n"
    )
    started = time.monotonic()
    report = asyncio.run(run_drill(options, settings))
    took = time.monotonic() - started
    over = f", over the {longest:.0f} s estimate{_load_note()}" if took > longest else ""
    sys.stderr.write(f"kb-mcp drill: done in {took:.1f} s{over}\n")
    data = report.to_json()
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        sys.stdout.write(report.summary() + "\n")
    return 0 if report.passed else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `drill` command."""
    parser = subparsers.add_parser(
        "drill",
        help="rotate secrets under load and report every failed request",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", help="MCP endpoint to drill (default: the running local stack's, from stack.json)"
    )
    parser.add_argument(
        "--stack-dir", default=".kb-mcp", help="data folder of the local stack (default .kb-mcp)"
    )
    parser.add_argument("--token-env", help="environment variable holding the bearer token")
    parser.add_argument(
        "--concurrency", type=int, default=16,
        help="MCP clients calling tools at once, each over its own connection (default 16)",
    )  # fmt: skip
    parser.add_argument(
        "--rotations", type=int, default=3, help="rotations of each secret (default 3)"
    )
    parser.add_argument(
        "--rotate", choices=("both", "postgres", "openai"), default="both",
        help="which secrets to rotate (default both)",
    )  # fmt: skip
    parser.add_argument(
        "--mix", default="add:1,search:4", help="relative weights of kb_add and kb_search calls"
    )
    parser.add_argument(
        "--warmup", type=float, default=10.0,
        help="seconds of steady load before the first rotation: the baseline (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--interval", type=float, default=1.0,
        help="seconds of load after a rotation is in service, before the next (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--cooldown", type=float, default=2.0,
        help="seconds of steady load after the last rotation (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--pickup-timeout", type=float, default=120.0,
        help="seconds to wait for /readyz to show a new version before calling it never "
        "picked up (default 120)",
    )  # fmt: skip
    parser.add_argument(
        "--nudge", action="store_true", help="SIGHUP the local server after each rotation"
    )
    parser.add_argument(
        "--openai-keys-from-env",
        help="comma-separated env var names holding new OpenAI keys to rotate through",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the documents the drill added (tag drill)"
    )
    parser.add_argument("--report", help="write the JSON report here")
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    parser.add_argument("--no-progress", action="store_true", help="no live display on stderr")
    parser.set_defaults(handler=_run)
