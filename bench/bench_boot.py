"""Boot time to ready and memory of the idle server, as a real `kb-mcp serve` process.

Against the local stack (PostgreSQL, moto, the fake OpenAI endpoint), each run spawns
`python -m kb_mcp serve --transport http --port 0` with production settings and measures
the time from spawn to the `--ready-fd` started line and to the first `/readyz` 200.
The runtime's own boot (`booted_in_s`, logged) is part of it; the rest before it is
interpreter start, imports and settings. It then reads VmRSS (and the peak, VmHWM) from
/proc after 2 s idle (0.5 s with --quick), sends SIGTERM and times the exit (code 0).

    python -m bench.bench_boot [--quick] [--json] [--runs 5]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import bench_parser, finish, machine, percentile, print_table
from bench._stack import BenchStack, open_stack
from kb_mcp.observability.logging import configure_logging

IDLE_S = 2.0
READY_TIMEOUT_S = 60.0


async def _status(port: int, path: str) -> int:
    """The HTTP status of GET `path` on 127.0.0.1:`port` (0 when it cannot connect)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        line = await reader.readline()
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    except OSError:
        return 0
    finally:
        writer.close()


def _memory_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def _started_line(ready_r: int) -> dict[str, Any]:
    """The `--ready-fd` handshake line; {} when the server exited before it was ready."""
    with os.fdopen(ready_r, "rb") as pipe:
        line = pipe.readline()
    started: dict[str, Any] = json.loads(line) if line else {}
    return started


async def _drain(process: asyncio.subprocess.Process, tail: list[str]) -> None:
    assert process.stderr is not None
    while raw := await process.stderr.readline():
        tail.append(raw.decode(errors="replace").rstrip())
        del tail[:-40]


async def one_boot(stack: BenchStack, idle_s: float) -> dict[str, Any]:
    """Spawn, wait for ready, idle, measure, stop."""
    tail: list[str] = []
    spawned = time.perf_counter()
    ready_r, ready_w = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "kb_mcp", "serve", "--transport", "http", "--port", "0"),
            *("--ready-fd", str(ready_w)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=stack.environment(),
            pass_fds=(ready_w,),
        )
    finally:
        os.close(ready_w)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_drain(process, tail))
            started = asyncio.to_thread(_started_line, ready_r)
            event = await asyncio.wait_for(started, READY_TIMEOUT_S)
            listening = time.perf_counter() - spawned
            if not event:
                raise RuntimeError("server exited before listening:\n" + "\n".join(tail))
            port = int(event["port"])
            deadline = time.monotonic() + READY_TIMEOUT_S
            while await _status(port, "/readyz") != 200:
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError("server never became ready:\n" + "\n".join(tail))
                await asyncio.sleep(0.005)
            ready = time.perf_counter() - spawned
            await asyncio.sleep(idle_s)
            memory = _memory_kib(process.pid)
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), READY_TIMEOUT_S)
            stopped = time.perf_counter() - stopping
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return {
        "listening_s": round(listening, 3),
        "ready_s": round(ready, 3),
        "runtime_booted_s": event.get("booted_in_s"),
        "before_boot_s": round(listening - float(event.get("booted_in_s") or 0.0), 3),
        "rss_mib": round(memory["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(memory["VmHWM"] / 1024, 1),
        "sigterm_to_exit_s": round(stopped, 3),
        "exit_code": code,
    }


async def run(runs: int, idle_s: float) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    async with open_stack() as stack:
        boots = [await one_boot(stack, idle_s) for _ in range(runs)]
    keys: tuple[str, ...] = ("listening_s", "ready_s", "runtime_booted_s", "before_boot_s")
    keys += ("rss_mib", "peak_rss_mib")
    summary = {
        key: {
            "p50": percentile([float(b[key]) for b in boots], 50),
            "min": min(float(b[key]) for b in boots),
            "max": max(float(b[key]) for b in boots),
        }
        for key in (*keys, "sigterm_to_exit_s")
    }
    return {
        "idle_s": idle_s,
        "runs": boots,
        "summary": summary,
        "exit_codes": sorted({b["exit_code"] for b in boots}),
    }


def report(figures: dict[str, Any]) -> None:
    labels = {
        "listening_s": "spawn -> started handshake (s)",
        "ready_s": "spawn -> /readyz 200 (s)",
        "runtime_booted_s": "  of which boot_runtime (s)",
        "before_boot_s": "  of which interpreter + imports (s)",
        "rss_mib": f"RSS after {figures['idle_s']:g} s idle (MiB)",
        "peak_rss_mib": "peak RSS (MiB)",
        "sigterm_to_exit_s": "SIGTERM -> exit (s)",
    }
    rows = [
        [
            label,
            figures["summary"][key]["p50"],
            figures["summary"][key]["min"],
            figures["summary"][key]["max"],
        ]
        for key, label in labels.items()
    ]
    print_table(
        f"kb-mcp serve --transport http, {len(figures['runs'])} run(s), production settings",
        ["figure", "p50", "min", "max"],
        rows,
    )
    print(f"exit codes after SIGTERM: {figures['exit_codes']}")


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "boot benchmark")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    quick = bool(args.quick)
    host = machine()
    figures = asyncio.run(run(args.runs or (1 if quick else 5), 0.5 if quick else IDLE_S))
    report(figures)
    finish("boot", figures, quick=quick, as_json=bool(args.json), host=host)
    return 0 if figures["exit_codes"] == [0] else 1


if __name__ == "__main__":
    sys.exit(main())
