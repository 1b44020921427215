"""MCP load through database faults: what clients see while PostgreSQL restarts or pauses.

Starts the local stack (`bench._stack`: PostgreSQL with fsync and synchronous commit on,
moto, the fake OpenAI endpoint) and a real `kb-mcp serve --transport http` (production
settings), then, per fault scenario,
drives 8 `kb_search` and 2 `kb_add` MCP clients (official client, streamable HTTP, one
session each) for a steady spell, injects the fault, and keeps driving until the
database has been back for a spell. Printed per scenario: requests sent, failed (a tool
error or a failure outside a call), the longest answer, adds answered "stored" whose
document is missing (lost), and documents stored more than once (duplicated). Each add
carries a title unique to it, so both are read from the table afterwards.

Scenarios (a registry: `@scenario(name)` on an async function that gets a `FaultContext`
and injects its fault; others, such as idle connections or hostile queries, add
themselves the same way):

- `restart`: `pg_ctl stop -m immediate`, start again `--restart-s` later (10 s);
- `pause-20`, `pause-45`: the postmaster and every backend stopped with SIGSTOP for 20 s
  or 45 s, then SIGCONT (a paused host as the service sees it: connections stay open,
  nothing answers).

The server's request budget is `KB_MCP_REQUEST_TIMEOUT_S` (30 s by default, `--budget-s`).
With --quick (the suite's smoke run): `restart` (1 s) and `pause-20` shortened to 2 s,
a 10 s budget, 1 s spells of load before and after.

    python -m bench.bench_faults [--quick] [--json] [--scenarios restart,pause-20,pause-45]
        [--restart-s 10] [--budget-s 30]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import Client

from bench import bench_parser, finish, machine, print_table
from bench._procs import ROOT, free_port, python_argv, spawn
from bench._stack import APP, BenchStack, _postmaster_pid, open_stack
from kb_mcp.devstack.postgres import PostgresCluster
from kb_mcp.observability.logging import configure_logging

SEARCH_CLIENTS = 8
ADD_CLIENTS = 2
_RUN = secrets.token_hex(4)


@dataclass
class FaultContext:
    """What a scenario may act on: the database cluster and the run's options."""

    pg: PostgresCluster
    restart_s: float
    pause_scale: float
    """Multiplies a pause's length (1 in a full run; --quick shortens it)."""


Scenario = Callable[[FaultContext], Awaitable[str]]
"""Injects a fault, returns when the fault is over; a one-line description of what it did."""

SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    """Register a fault scenario under `name` (`--scenarios` selects them)."""

    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return register


def _pg_ctl(pg: PostgresCluster, *args: str) -> None:
    install = pg._install  # the cluster's install (binaries, the user they run as)
    if install is None:
        raise RuntimeError("the cluster was never started")
    log = pg.data_dir / "kb_mcp_server.log"
    result = install.run([install.tool("pg_ctl"), "-D", str(pg.data_dir), "-l", str(log), *args])
    if result.returncode != 0:
        raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {result.stderr.strip()}")


@scenario("restart")
async def restart(ctx: FaultContext) -> str:
    """Immediate stop (no checkpoint, sessions cut), start again after `restart_s`."""
    await asyncio.to_thread(_pg_ctl, ctx.pg, "-m", "immediate", "-w", "stop")
    await asyncio.sleep(ctx.restart_s)  # the outage's length: the fault itself
    await asyncio.to_thread(_pg_ctl, ctx.pg, "-w", "-t", "60", "start")
    return f"stop -m immediate, start {ctx.restart_s:g} s later"


def _family(pid: int) -> list[int]:
    """`pid` and its children (the postmaster's backends and workers), from /proc."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        pids.extend(int(child) for child in children)
    return pids


async def _pause(ctx: FaultContext, seconds: float) -> str:
    postmaster = _postmaster_pid(ctx.pg)
    if postmaster is None:
        raise RuntimeError("no postmaster pid")
    paused = _family(postmaster)
    for pid in paused:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds * ctx.pause_scale)  # the pause's length: the fault itself
    finally:
        for pid in paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    return f"SIGSTOP of {len(paused)} processes for {seconds * ctx.pause_scale:g} s"


@scenario("pause-20")
async def pause_20(ctx: FaultContext) -> str:
    """PostgreSQL paused 20 s."""
    return await _pause(ctx, 20.0)


@scenario("pause-45")
async def pause_45(ctx: FaultContext) -> str:
    """PostgreSQL paused 45 s."""
    return await _pause(ctx, 45.0)


# -- load ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients of one scenario saw."""

    sent: int = 0
    failed: int = 0
    longest_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    stored: list[str] = field(default_factory=list)
    """Titles of adds answered as stored."""
    unknown: list[str] = field(default_factory=list)
    """Titles of adds answered "outcome unknown"."""

    def note(self, kind: str, seconds: float, error: str | None) -> None:
        self.sent += 1
        self.longest_s = max(self.longest_s, seconds)
        if error is not None:
            self.failed += 1
            key = f"{kind}: {error[:90]}"
            self.errors[key] = self.errors.get(key, 0) + 1


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def client_loop(
    url: str, kind: str, index: int, tally: Tally, stop: asyncio.Event, run: str
) -> None:
    """One MCP session calling `kind` back to back until `stop`."""
    n = 0
    try:
        async with Client(f"{url}/mcp", cache=None) as session:
            while not stop.is_set():
                n += 1
                title = f"fault {run} {kind} {index}-{n}"
                if kind == "kb_search":
                    arguments: dict[str, Any] = {"query": f"credentials rotation {n}", "limit": 5}
                else:
                    arguments = {"title": title, "content": f"{title}: written under faults."}
                began = time.perf_counter()
                try:
                    result = await session.call_tool(kind, arguments)
                except Exception as exc:  # a failure outside the tool: counted, go on
                    tally.note(kind, time.perf_counter() - began, type(exc).__name__)
                    continue
                error = _text(result) if result.is_error else None
                tally.note(kind, time.perf_counter() - began, error)
                if kind == "kb_add":
                    if error is None:
                        tally.stored.append(title)
                    elif "outcome is unknown" in error:
                        tally.unknown.append(title)
    except Exception as exc:  # the session itself was lost: counted
        tally.note(kind, 0.0, f"session lost ({type(exc).__name__})")


async def run_scenario(
    name: str, url: str, stack: BenchStack, ctx: FaultContext, steady_s: float
) -> dict[str, Any]:
    """Load before, during and after the fault; then the table is checked."""
    tally = Tally()
    stop = asyncio.Event()
    run = f"{_RUN} {name} {secrets.token_hex(2)}"  # titles (and contents) unique per run
    loops = [
        *(client_loop(url, "kb_search", i, tally, stop, run) for i in range(SEARCH_CLIENTS)),
        *(client_loop(url, "kb_add", i, tally, stop, run) for i in range(ADD_CLIENTS)),
    ]
    async with asyncio.TaskGroup() as tasks:
        for loop in loops:
            tasks.create_task(loop)
        await asyncio.sleep(steady_s)  # steady load before the fault
        began = time.perf_counter()
        what = await SCENARIOS[name](ctx)
        fault_s = time.perf_counter() - began
        await asyncio.sleep(steady_s)  # and after it
        stop.set()
    rows = await stack.pg.fetch(
        "SELECT title, count(*) AS n FROM documents WHERE title LIKE $1 GROUP BY title",
        f"fault {run} %",
        database=APP,
    )
    counts = {row["title"]: int(row["n"]) for row in rows}
    lost = sum(1 for title in tally.stored if counts.get(title, 0) == 0)
    duplicated = sum(1 for n in counts.values() if n > 1)
    return {
        "scenario": name,
        "fault": what,
        "fault_s": round(fault_s, 2),
        "sent": tally.sent,
        "failed": tally.failed,
        "longest_s": round(tally.longest_s, 2),
        "adds_stored": len(tally.stored),
        "adds_unknown": len(tally.unknown),
        "lost": lost,
        "duplicated": duplicated,
        "errors": dict(sorted(tally.errors.items(), key=lambda kv: -kv[1])[:5]),
    }


async def run(args: Any) -> dict[str, Any]:
    chosen = args.scenarios or ("restart,pause-20" if args.quick else "restart,pause-20,pause-45")
    names = [n for n in chosen.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
    budget_s = 10.0 if args.quick and args.budget_s is None else (args.budget_s or 30.0)
    results: list[dict[str, Any]] = []
    # Durable: an immediate stop is a crash, and a commit acknowledged before its WAL was
    # flushed (synchronous_commit off) would be lost by the database, not by kb-mcp.
    async with open_stack(durable=True) as stack:
        port = free_port()
        env = stack.environment(
            KB_MCP_REQUEST_TIMEOUT_S=str(budget_s),
            KB_MCP_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        argv = python_argv(
            "", "kb_mcp.cli:main", "serve", "--transport", "http", "--port", str(port)
        )
        async with spawn("kb-mcp", argv, env, port, "/readyz") as server:
            ctx = FaultContext(
                pg=stack.pg,
                restart_s=1.0 if args.quick else args.restart_s,
                pause_scale=0.1 if args.quick else 1.0,
            )
            for name in names:
                results.append(
                    await run_scenario(name, server.url, stack, ctx, 1.0 if args.quick else 5.0)
                )
    return {"budget_s": budget_s, "clients": {"kb_search": 8, "kb_add": 2}, "scenarios": results}


def report(figures: dict[str, Any]) -> None:
    print_table(
        f"database faults under MCP load (8 kb_search + 2 kb_add clients, "
        f"budget {figures['budget_s']:g} s)",
        ["scenario", "fault", "sent", "failed", "longest s", "unknown", "lost", "duplicated"],
        [
            [
                r["scenario"],
                r["fault"],
                r["sent"],
                r["failed"],
                r["longest_s"],
                r["adds_unknown"],
                r["lost"],
                r["duplicated"],
            ]
            for r in figures["scenarios"]
        ],
    )
    for r in figures["scenarios"]:
        for error, count in r["errors"].items():
            print(f"  {r['scenario']}: {count} x {error}")


def main() -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--scenarios", default=None, help=f"some of {sorted(SCENARIOS)}")
    parser.add_argument("--restart-s", type=float, default=10.0)
    parser.add_argument("--budget-s", type=float, default=None)
    args = parser.parse_args()
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    host = machine()
    figures = asyncio.run(run(args))
    report(figures)
    finish("bench_faults", figures, quick=args.quick, as_json=args.json, host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
