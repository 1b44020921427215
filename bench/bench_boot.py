"""Boot time to ready, CPU spent booting and memory of the idle server; `--help`; stdio.

Against the local stack (PostgreSQL, moto, the fake OpenAI endpoint), each run spawns
`python -m kb_mcp serve --transport http --port 0` with production settings and measures
the time from spawn to the `--ready-fd` started line and to the first `/readyz` 200 (a
poll; nothing is read from the logs), and the CPU seconds the process used by then (user +
system, from /proc: on a shared machine wall time grows with the load, CPU time much
less). It then reads VmRSS (and the peak, VmHWM) after 2 s idle (0.5 s with --quick),
sends SIGTERM and times the exit (code 0). Then, per run: `kb-mcp --help` (spawn to exit)
and the stdio transport as a desktop client starts it: the SDK's stdio client
(`mcp.Client(StdioServerParameters(...))`) from spawn to a completed handshake and a
`tools/list` answer. And the floor: the CPU seconds a fresh interpreter spends importing
only the third-party packages `serve --transport http` needs (`THIRD_PARTY`), with the
collector off as the server imports them, measured in the child (`time.process_time`).

The package's bytecode is compiled first, as `pip install` does in the image (the
development checkout is an editable install, and `PYTHONDONTWRITEBYTECODE=1`, which the
image also sets, would otherwise recompile every `kb_mcp` module at each spawn).

    python -m bench.bench_boot [--quick] [--json] [--runs 5]
"""

from __future__ import annotations

import asyncio
import compileall
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

import kb_mcp
from bench import bench_parser, finish, machine, percentile, print_table
from bench._stack import BenchStack, open_stack
from kb_mcp.observability.logging import configure_logging

IDLE_S = 2.0
READY_TIMEOUT_S = 60.0
_TICKS = os.sysconf("SC_CLK_TCK")
THIRD_PARTY = (
    "mcp.server.mcpserver",
    "openai",
    "aioboto3",
    "asyncpg",
    "uvicorn",
    "uvloop",
    "starlette.applications",
    "pydantic_settings",
    "structlog",
)
"""What `kb-mcp serve --transport http` imports of others' code (each pulls in its own)."""
_FLOOR = (
    "import gc, os, time; gc.disable(); began = time.process_time(); import {modules}; "
    "print(time.process_time() - began, flush=True); os._exit(0)"
)


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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (fields 14 and 15 of its stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


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
            cpu = _cpu_s(process.pid)
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
        "cpu_to_ready_s": round(cpu, 3),
        "runtime_booted_s": event.get("booted_in_s"),
        "before_boot_s": round(listening - float(event.get("booted_in_s") or 0.0), 3),
        "rss_mib": round(memory["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(memory["VmHWM"] / 1024, 1),
        "sigterm_to_exit_s": round(stopped, 3),
        "exit_code": code,
    }


async def help_time() -> float:
    """Seconds from spawning `kb-mcp --help` to its exit (code 0 required)."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kb_mcp", "--help", stdout=asyncio.subprocess.DEVNULL
    )
    if await process.wait() != 0:
        raise RuntimeError("kb-mcp --help failed")
    return round(time.perf_counter() - began, 3)


async def stdio_handshake(stack: BenchStack) -> float:
    """Seconds from spawning `kb-mcp serve` (stdio) to the handshake and a tools/list."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "kb_mcp", "serve", "--transport", "stdio"],
        env=stack.environment(),
    )
    began = time.perf_counter()
    async with Client(params) as client:
        tools = await client.list_tools()
        taken = time.perf_counter() - began
    if not tools.tools:
        raise RuntimeError("the stdio server listed no tools")
    return round(taken, 3)


async def import_floor() -> float:
    """CPU seconds of importing `THIRD_PARTY` alone in a fresh interpreter."""
    code = _FLOOR.format(modules=", ".join(THIRD_PARTY))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError("importing the third-party floor failed")
    return round(float(out), 3)


async def run(runs: int, idle_s: float) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    compileall.compile_dir(Path(kb_mcp.__file__).parent, quiet=1)
    async with open_stack() as stack:
        boots = [await one_boot(stack, idle_s) for _ in range(runs)]
        helps = [await help_time() for _ in range(runs)]
        stdio = [await stdio_handshake(stack) for _ in range(runs)]
    floors = [await import_floor() for _ in range(runs)]
    for boot, help_s, stdio_s, floor_s in zip(boots, helps, stdio, floors, strict=True):
        boot["help_s"] = help_s
        boot["stdio_handshake_s"] = stdio_s
        boot["third_party_imports_cpu_s"] = floor_s
    keys: tuple[str, ...] = ("listening_s", "ready_s", "cpu_to_ready_s", "runtime_booted_s")
    keys += ("before_boot_s", "rss_mib", "peak_rss_mib", "help_s", "stdio_handshake_s")
    keys += ("third_party_imports_cpu_s",)
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
        "cpu_to_ready_s": "CPU used by then, user + system (s)",
        "rss_mib": f"RSS after {figures['idle_s']:g} s idle (MiB)",
        "peak_rss_mib": "peak RSS (MiB)",
        "sigterm_to_exit_s": "SIGTERM -> exit (s)",
        "help_s": "kb-mcp --help, spawn -> exit (s)",
        "stdio_handshake_s": "stdio: spawn -> handshake + tools/list (s)",
        "third_party_imports_cpu_s": "floor: third-party imports alone, CPU (s)",
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
