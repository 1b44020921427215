"""A fleet of real `kb-mcp serve` processes through a credentials rotation: connection peak.

N processes (`python -m kb_mcp serve --transport http`, production settings, pool
`min_size`/`max_size` as given) share one PostgreSQL. Each takes HTTP load: `clients`
keep-alive connections per process, each sending `GET /readyz` back to back (every one
runs `SELECT 1` through the pool and names the postgres version in service). Then a
multi-user rotation of the credentials secret, and SIGHUP to every process at once (the
refresh an operator or the scheduled poll triggers); the whole fleet swaps together, the
worst case for the database.

A sampler counts the app roles' backends in `pg_stat_activity` every `--sample-ms`
throughout. Reported: the steady peak (the highest sample over the steady window before
the rotation), the rotation peak (the highest sample from the SIGHUP until every process
serves the new version and the old role has no backend left, plus a tail), their ratio
(goal <= 1.25), and failed requests (any non-200 or broken connection; goal 0).

Before/after: `--server-tree DIR` runs the servers from another source tree (a checkout
of the parent commit); the load, sampler and stack are this tree's.

    python -m bench.bench_fleet_connections [--quick] [--json] [--instances 8]
        [--clients 6] [--min-size 2] [--max-size 5] [--server-tree DIR]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench import bench_parser, finish, machine, print_table
from bench._procs import ROOT, Server, free_port, spawn
from bench._stack import APP, BenchStack, open_stack
from kb_mcp.observability.logging import configure_logging


@dataclass(frozen=True)
class Plan:
    instances: int
    clients: int
    min_size: int
    max_size: int
    warmup_s: float
    steady_s: float
    tail_s: float
    sample_ms: float
    server_tree: str


@dataclass
class Load:
    """What the load clients saw: requests, failures, and each process's pg version."""

    ok: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    versions: dict[int, str] = field(default_factory=dict)

    def fail(self, why: str) -> None:
        self.failed += 1
        self.failures[why] = self.failures.get(why, 0) + 1


@dataclass
class Samples:
    """(monotonic time, old-role backends, new-role backends) every sample."""

    rows: list[tuple[float, int, int]] = field(default_factory=list)

    def peak(self, start: float, end: float) -> int:
        return max((a + b for t, a, b in self.rows if start <= t <= end), default=0)

    def last(self) -> tuple[float, int, int]:
        return self.rows[-1] if self.rows else (0.0, 0, 0)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


def _pg_version(body: bytes, secret: str) -> str:
    for entry in json.loads(body).get("secrets", []):
        if entry.get("name") == secret:
            return str(entry.get("in_service_version_id") or "")
    return ""


async def _client(port: int, secret: str, load: Load, stop: asyncio.Event) -> None:
    """One keep-alive connection sending `GET /readyz` until `stop`."""
    request = f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            try:
                writer.write(request)
                status, body = await _read_response(reader)
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                load.fail(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if status == 200:
                load.ok += 1
                load.versions[port] = _pg_version(body, secret)
            else:
                load.fail(f"http {status}")
    finally:
        writer.close()


async def _sample(
    stack: BenchStack, roles: tuple[str, str], every_s: float, samples: Samples, stop: asyncio.Event
) -> None:
    """Backends per app role in pg_stat_activity, every `every_s`, on one admin session."""
    pg = stack.pg
    conn = await asyncpg.connect(
        host=pg.host,
        port=pg.port,
        user=pg.superuser,
        password=pg.superuser_password,
        database="postgres",
    )
    query = (
        "SELECT count(*) FILTER (WHERE usename = $1), count(*) FILTER (WHERE usename = $2)"
        " FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = $3"
    )
    try:
        while not stop.is_set():
            row = await conn.fetchrow(query, roles[0], roles[1], APP)
            assert row is not None
            samples.rows.append((time.monotonic(), int(row[0]), int(row[1])))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await conn.close()


async def _start_fleet(
    fleet: AsyncExitStack, stack: BenchStack, plan: Plan
) -> tuple[list[Server], float]:
    tree = Path(plan.server_tree)
    env = stack.environment(
        KB_MCP_DB_POOL_MIN_SIZE=str(plan.min_size),
        KB_MCP_DB_POOL_MAX_SIZE=str(plan.max_size),
        SECRETS_CACHE_TTL_SECONDS="3600",
        KB_MCP_LOG_LEVEL="WARNING",
        # the tree's own hot-swap library first, when it has one (ahead of the installed one)
        PYTHONPATH=os.pathsep.join(
            str(p) for p in (tree, tree / "secretswap" / "src") if p.is_dir()
        ),
    )
    began = time.monotonic()

    async def one(i: int) -> Server:
        port = free_port()
        argv = [
            sys.executable,
            *("-m", "kb_mcp", "serve", "--transport", "http", "--host", "127.0.0.1"),
            *("--port", str(port)),
        ]
        return await fleet.enter_async_context(
            spawn(f"fleet{i}", argv, env, port, "/readyz", cwd=tree)
        )

    servers = list(await asyncio.gather(*(one(i) for i in range(plan.instances))))
    return servers, time.monotonic() - began


async def run(plan: Plan) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING")
    async with open_stack(max_connections=plan.instances * plan.max_size * 2 + 20) as stack:
        old_role = stack.active_role
        new_role = f"{APP}_b" if old_role == f"{APP}_a" else f"{APP}_a"
        async with AsyncExitStack() as fleet:
            servers, boot_s = await _start_fleet(fleet, stack, plan)
            load, samples = Load(), Samples()
            stop_load, stop_sampler = asyncio.Event(), asyncio.Event()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(
                    _sample(
                        stack, (old_role, new_role), plan.sample_ms / 1000, samples, stop_sampler
                    )
                )
                for server in servers:
                    for _ in range(plan.clients):
                        tasks.create_task(
                            _client(server.port, stack.postgres_secret, load, stop_load)
                        )
                await asyncio.sleep(plan.warmup_s)
                steady_from = time.monotonic()
                ok_before = load.ok
                await asyncio.sleep(plan.steady_s)
                steady_to = time.monotonic()
                steady_rps = (load.ok - ok_before) / plan.steady_s

                version = await stack.rotate_postgres()
                rotated_at = time.monotonic()
                for server in servers:
                    server.process.send_signal(signal.SIGHUP)
                ports = {s.port for s in servers}
                deadline = rotated_at + 60
                while time.monotonic() < deadline:
                    on_new = {p for p, v in load.versions.items() if v == version}
                    if (
                        on_new >= ports
                        and samples.last()[0] > rotated_at
                        and samples.last()[1] == 0
                    ):
                        break
                    await asyncio.sleep(plan.sample_ms / 1000)
                settled_at = time.monotonic()
                await asyncio.sleep(plan.tail_s)
                window_end = time.monotonic()
                stop_load.set()
                stop_sampler.set()

    steady_peak = samples.peak(steady_from, steady_to)
    rotation_peak = samples.peak(rotated_at, window_end)
    new_after = [b for t, _, b in samples.rows if settled_at <= t <= window_end]
    return {
        "plan": plan.__dict__
        | {"server_tree": "this tree" if plan.server_tree == str(ROOT) else "other tree"},
        "boot_fleet_s": round(boot_s, 2),
        "load": {
            "requests_ok": load.ok,
            "failed": load.failed,
            "failures": load.failures,
            "steady_req_per_s": round(steady_rps, 1),
        },
        "connections": {
            "fleet_max": plan.instances * plan.max_size,
            "steady_peak": steady_peak,
            "rotation_peak": rotation_peak,
            "peak_ratio": round(rotation_peak / steady_peak, 3) if steady_peak else None,
            "new_role_after_settle_max": max(new_after, default=0),
            "all_on_new_version_s": round(settled_at - rotated_at, 3),
            "samples": len(samples.rows),
        },
    }


def main() -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--clients", type=int, default=6, help="keep-alive clients per process")
    parser.add_argument("--min-size", type=int, default=2)
    parser.add_argument("--max-size", type=int, default=5)
    parser.add_argument("--sample-ms", type=float, default=20.0)
    parser.add_argument("--server-tree", default=str(ROOT), help="source tree the servers run")
    args = parser.parse_args()
    plan = Plan(
        instances=args.instances,
        clients=args.clients,
        min_size=args.min_size,
        max_size=args.max_size,
        warmup_s=2.0 if args.quick else 5.0,
        steady_s=3.0 if args.quick else 10.0,
        tail_s=1.0 if args.quick else 3.0,
        sample_ms=args.sample_ms,
        server_tree=str(Path(args.server_tree).resolve()),
    )
    host = machine()
    figures = asyncio.run(run(plan))
    c, ld = figures["connections"], figures["load"]
    print_table(
        f"fleet rotation: {plan.instances} processes x {plan.clients} clients, pool "
        f"{plan.min_size}..{plan.max_size}",
        ["steady peak", "rotation peak", "ratio", "failed", "requests ok", "req/s", "swap all s"],
        [
            [
                c["steady_peak"],
                c["rotation_peak"],
                c["peak_ratio"],
                ld["failed"],
                ld["requests_ok"],
                ld["steady_req_per_s"],
                c["all_on_new_version_s"],
            ]
        ],
    )
    finish("bench_fleet_connections", figures, quick=args.quick, as_json=args.json, host=host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
