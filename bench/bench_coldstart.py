"""Many `kb-mcp serve` starting together, each held to a Fargate task's CPU share.

Against the local stack (PostgreSQL, moto's Secrets Manager, the fake OpenAI endpoint),
N servers (`serve --transport http`, production settings) are spawned, each in a cgroup v1
CPU group of its own whose `cpu.cfs_quota_us` is the task's share (512 CPU units: 0.5 vCPU
= 50 ms per 100 ms period; 1024: 1 vCPU). The process joins its group before `exec`, so
the whole start is held to the share. On a machine with C cores the servers start in
waves of floor(C / share) at once, so the shares together never exceed the cores (the
figures would otherwise measure the machine, not the task size); each wave starts at
once. Per server: spawn to the `--ready-fd` line and to the first `/readyz` 200.

Every Secrets Manager call goes through a counting proxy in front of moto (moto does not
throttle): each request's `X-Amz-Target` is counted per second. Secrets Manager's
documented quota for GetSecretValue is 10,000 requests per second per account and region
(docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html; raised from
5,000 in 2022 and 10,000/40,000 GetSecretValue/DescribeSecret since 2025-03): "throttled"
calls are those above it in any one-second window. The bench also reports the rate a
fleet of N would reach if all started in the same second (calls per server x N).

Without a writable cgroup v1 CPU hierarchy the servers run unconstrained and the figures
say so.

    python -m bench.bench_coldstart [--quick] [--json] [--servers 20] [--shares 0.5,1.0]
"""

from __future__ import annotations

import asyncio
import compileall
import json
import os
import signal
import sys
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kb_mcp
from bench import bench_parser, finish, machine, percentile, print_table
from bench._procs import http_status
from bench._stack import BenchStack, open_stack
from kb_mcp.observability.logging import configure_logging

CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000
GET_SECRET_VALUE_QUOTA_PER_S = 10_000
READY_TIMEOUT_S = 120.0
_TARGET = b"x-amz-target: secretsmanager."
_TICKS = os.sysconf("SC_CLK_TCK")


class CountingProxy:
    """A TCP proxy in front of moto that timestamps each Secrets Manager operation."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.calls: list[tuple[float, str]] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> CountingProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def _count(self, data: bytes) -> None:
        lower = data.lower()
        start = 0
        while (found := lower.find(_TARGET, start)) >= 0:
            end = lower.find(b"\r\n", found)
            name = data[found + len(_TARGET) : end if end > 0 else None].decode(errors="replace")
            self.calls.append((time.monotonic(), name.strip()))
            start = found + len(_TARGET)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    self._count(data)  # a request head arrives whole in one read here
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False)
        )


def _cgroup_ok() -> bool:
    probe = CGROUP_CPU / f"kbcold-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


def _make_group(name: str, share: float) -> Path:
    group = CGROUP_CPU / name
    group.mkdir(exist_ok=True)
    (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (group / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * share)))
    return group


def _remove_group(group: Path) -> None:
    with suppress(OSError):
        group.rmdir()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _throttled_s(group: Path) -> float:
    """Seconds the group's quota held it back so far (cgroup v1 cpu.stat throttled_time)."""
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return round(int(stat.get("throttled_time", "0")) / 1e9, 3)


def _started_line(ready_r: int) -> dict[str, Any]:
    with os.fdopen(ready_r, "rb") as pipe:
        line = pipe.readline()
    started: dict[str, Any] = json.loads(line) if line else {}
    return started


async def _drain(process: asyncio.subprocess.Process, tail: list[str]) -> None:
    assert process.stderr is not None
    while raw := await process.stderr.readline():
        tail.append(raw.decode(errors="replace").rstrip())
        del tail[:-30]


@dataclass
class Started:
    """A server that reached ready, the task reading its stderr, and its times."""

    process: asyncio.subprocess.Process
    drain: asyncio.Task[None]
    times: dict[str, float]


async def one_start(env: dict[str, str], group: Path | None, began: float) -> Started:
    """Spawn one server (in `group`), wait for its /readyz 200; the times from `began`."""
    ready_r, ready_w = os.pipe()
    serve = [sys.executable, "-m", "kb_mcp", "serve", "--transport", "http", "--port", "0"]
    serve += ["--ready-fd", str(ready_w)]
    argv = serve
    if group is not None:
        join = f'echo $$ > {group / "cgroup.procs"} && exec "$@"'
        argv = ["/bin/sh", "-c", join, "sh", *serve]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            pass_fds=(ready_w,),
        )
    finally:
        os.close(ready_w)
    tail: list[str] = []
    drain = asyncio.create_task(_drain(process, tail))
    try:
        event = await asyncio.wait_for(asyncio.to_thread(_started_line, ready_r), READY_TIMEOUT_S)
        if not event:
            raise RuntimeError("server exited before listening:\n" + "\n".join(tail))
        listening = time.monotonic() - began
        port = int(event["port"])
        while await http_status(port, "/readyz") != 200:
            if process.returncode is not None or time.monotonic() - began > READY_TIMEOUT_S:
                raise RuntimeError("server never became ready:\n" + "\n".join(tail))
            await asyncio.sleep(0.02)
        ready = time.monotonic() - began
    except BaseException:
        drain.cancel()
        if process.returncode is None:
            process.kill()
        raise
    times = {"listening_s": round(listening, 3), "ready_s": round(ready, 3)}
    times["cpu_to_ready_s"] = round(_cpu_s(process.pid), 3)
    times["quota_throttled_s"] = _throttled_s(group) if group is not None else 0.0
    return Started(process, drain, times)


async def _stop(started: Started) -> None:
    process = started.process
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
    await started.drain


async def run_share(
    stack: BenchStack, proxy: CountingProxy, servers: int, share: float, cores: int, limit: bool
) -> dict[str, Any]:
    """All `servers` at `share` vCPU each, in waves within the cores; figures."""
    wave = max(1, int(cores // share)) if limit else servers
    env = stack.environment(
        AWS_ENDPOINT_URL=proxy.url, KB_MCP_LOG_LEVEL="WARNING", PYTHONDONTWRITEBYTECODE="1"
    )
    first_call = len(proxy.calls)
    starts: list[dict[str, float]] = []
    groups: list[Path] = []
    try:
        for offset in range(0, servers, wave):
            size = min(wave, servers - offset)
            names = [f"kbcold-{os.getpid()}-{share}-{offset + i}" for i in range(size)]
            wave_groups = [_make_group(n, share) for n in names] if limit else [None] * size
            groups += [g for g in wave_groups if g is not None]
            began = time.monotonic()
            results = await asyncio.gather(*(one_start(env, g, began) for g in wave_groups))
            starts += [started.times for started in results]
            await asyncio.gather(*(_stop(started) for started in results))
    finally:
        for group in groups:
            _remove_group(group)
    calls = proxy.calls[first_call:]
    per_second = Counter(int(at) for at, name in calls if name == "GetSecretValue")
    peak = max(per_second.values(), default=0)
    gets = sum(1 for _, name in calls if name == "GetSecretValue")
    ready = [s["ready_s"] for s in starts]
    return {
        "servers": servers,
        "cpu_share_vcpu": share,
        "cpu_limited": limit,
        "wave_size": wave,
        "ready_s": {
            "p50": percentile(ready, 50),
            "p99": percentile(ready, 99),
            "max": max(ready),
            "under_5s": sum(1 for r in ready if r < 5.0),
        },
        "listening_s_p50": percentile([s["listening_s"] for s in starts], 50),
        # CPU to ready over the share: the start on a machine with nothing else running.
        "cpu_to_ready_s_p50": percentile([s["cpu_to_ready_s"] for s in starts], 50),
        # Time held back by the quota; the rest of ready_s beyond CPU is waiting for a core.
        "quota_throttled_s_p50": percentile([s["quota_throttled_s"] for s in starts], 50),
        "idle_machine_estimate_s": round(
            (percentile([s["cpu_to_ready_s"] for s in starts], 50) or 0.0) / share, 2
        ),
        "idle_machine_estimate_p99_s": round(
            (percentile([s["cpu_to_ready_s"] for s in starts], 99) or 0.0) / share, 2
        ),
        "secrets_calls": dict(Counter(name for _, name in calls)),
        "get_secret_value_per_server": round(gets / servers, 2),
        "get_secret_value_peak_per_s": peak,
        # Every server's reads landing in the same second: the fleet's worst case.
        "all_at_once_get_secret_value_per_s": gets,
        "throttled_calls": sum(
            max(0, n - GET_SECRET_VALUE_QUOTA_PER_S) for n in per_second.values()
        ),
    }


async def run(servers: int, shares: list[float]) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    compileall.compile_dir(Path(kb_mcp.__file__).parent, quiet=1)
    limit = _cgroup_ok()
    cores = os.cpu_count() or 1
    rows = []
    async with (
        open_stack(max_connections=servers * 4 + 40) as stack,
        CountingProxy(stack.endpoint_url) as proxy,
    ):
        for share in shares:
            rows.append(await run_share(stack, proxy, servers, share, cores, limit))
    return {
        "cores": cores,
        "cgroup_v1_cpu": limit,
        "quota_get_secret_value_per_s": GET_SECRET_VALUE_QUOTA_PER_S,
        "rows": rows,
    }


def report(figures: dict[str, Any]) -> None:
    print_table(
        f"cold start, each server held to its CPU share ({figures['cores']} cores; "
        f"cgroup limit {'on' if figures['cgroup_v1_cpu'] else 'OFF: unconstrained'})",
        ("N", "vCPU", "wave", "p50 s", "p99 s", "max s", "<5 s", "CPU s", "quota wait s",
         "CPU/share p50 s", "CPU/share p99 s",
         "GSV/server", "peak GSV/s", "throttled"),
        [
            (
                r["servers"], r["cpu_share_vcpu"], r["wave_size"], r["ready_s"]["p50"],
                r["ready_s"]["p99"], r["ready_s"]["max"], r["ready_s"]["under_5s"],
                r["cpu_to_ready_s_p50"], r["quota_throttled_s_p50"], r["idle_machine_estimate_s"],
                r["idle_machine_estimate_p99_s"],
                r["get_secret_value_per_server"], r["get_secret_value_peak_per_s"],
                r["throttled_calls"],
            )
            for r in figures["rows"]
        ],
    )  # fmt: skip
    print(
        f"\nGetSecretValue quota {figures['quota_get_secret_value_per_s']:,}/s per account "
        "and region; throttled = calls above it in any one-second window."
    )


def main() -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--shares", default="0.5,1.0", help="vCPU per server, comma-separated")
    args = parser.parse_args()
    servers, shares = (2, [1.0]) if args.quick else (
        args.servers, [float(s) for s in args.shares.split(",") if s.strip()]
    )  # fmt: skip
    host = machine()
    figures = asyncio.run(run(servers, shares))
    report(figures)
    finish("bench_coldstart", figures, quick=args.quick, as_json=args.json, host=host)
    return 0 if all(r["throttled_calls"] == 0 for r in figures["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
