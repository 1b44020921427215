"""Idle connections against `kb-mcp serve`: do health checks and other clients still get in?

A real `kb-mcp serve --transport http` (production settings, PostgreSQL, moto and the
fake OpenAI endpoint of `bench._stack`) is started in a child process. One peer
(127.0.0.1) then holds N idle TCP connections, never sending a byte and opening a new
one `--reopen-ms` after the server closes one (an attacker, or a client pool gone wrong;
a process of its own, so that its churn does not slow the probes). For `--seconds`
(longer than the 10 s header timeout, so every idle connection is closed and reopened at
least once), every `--every-ms`:

- GET /healthz and GET /readyz on a new connection from the same peer (ECS's container
  health check runs inside the task, on loopback, like the attacker here) and from a
  third address (127.0.0.3, the load balancer's health check);
- a `kb_search` tools/call on a new connection from another peer (127.0.0.2).

Each answer must arrive within `--timeout-ms`. Printed: health answers and tool-call
successes out of those sent, per source; the longest answer; the idle connections the
server closed on arrival and how often the attacker reconnected.

`--limits name=value` overrides an `HttpLimits` field in the server (a bench-only patch
of `kb_mcp.runtime.http_transport`, e.g. `--limits header_timeout_s=2`); `--server-tree
DIR` runs the server from another checkout (before/after).

    python -m bench.bench_edge [--quick] [--json] [--connections 300] [--seconds 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import bench_parser, finish, machine, print_table
from bench._procs import ROOT, free_port, python_argv, spawn
from bench._stack import open_stack
from kb_mcp.observability.logging import configure_logging

ATTACKER = "127.0.0.1"
CLIENT = "127.0.0.2"
BALANCER = "127.0.0.3"


@dataclass
class Tally:
    """Requests sent and answered well from one source, and the longest answer."""

    sent: int = 0
    ok: int = 0
    longest_s: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)

    def record(self, outcome: str, elapsed_s: float) -> None:
        self.sent += 1
        if outcome == "ok":
            self.ok += 1
            self.longest_s = max(self.longest_s, elapsed_s)
        else:
            self.failures[outcome] = self.failures.get(outcome, 0) + 1

    def row(self, name: str) -> list[object]:
        share = 100.0 * self.ok / self.sent if self.sent else 0.0
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "-"
        return [name, self.sent, self.ok, round(share, 2), round(self.longest_s * 1000), failures]


@dataclass
class Attack:
    """The idle connections of one peer: how many were opened and how they ended."""

    target: int
    opened: int = 0
    closed_on_arrival: int = 0
    reset: int = 0
    placed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once `target` connections have been opened."""


async def _exchange(
    port: int, source: str, request: bytes, timeout_s: float, *, want: bytes
) -> tuple[str, float]:
    """One request on a new connection from `source`: "ok" or why not, and the time it took."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            try:
                writer.write(request)
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
    except TimeoutError:
        return "timeout", time.perf_counter() - started
    except ConnectionResetError:
        return "reset", time.perf_counter() - started
    except OSError as exc:
        return type(exc).__name__, time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if not data:
        return "closed", elapsed
    status = data.split(b" ", 2)[1].decode(errors="replace")
    if status != "200":
        return f"http {status}", elapsed
    return ("ok" if want in data else "bad body"), elapsed


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()


def _search(port: int) -> bytes:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "kb_search", "arguments": {"query": "idle connections"}},
        }
    ).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _hold(port: int, attack: Attack, reopen_s: float, stop: asyncio.Event) -> None:
    """One idle connection from the attacker, reopened whenever the server closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(ATTACKER, 0)
            )
        except OSError:
            attack.reset += 1
        else:
            attack.opened += 1
            if attack.opened >= attack.target:
                attack.placed.set()
            opened_at = time.perf_counter()
            read = asyncio.ensure_future(reader.read())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if read.done():
                if read.exception() is not None:
                    attack.reset += 1
                elif time.perf_counter() - opened_at < 0.5:
                    attack.closed_on_arrival += 1
            else:
                read.cancel()
            writer.close()
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), reopen_s)


async def _probe(
    port: int, tallies: dict[str, Tally], every_s: float, timeout_s: float, stop: asyncio.Event
) -> None:
    """Health checks from the attacker's address and the balancer's, tool calls from another."""
    probes = [
        ("healthz from 127.0.0.1", ATTACKER, _get(port, "/healthz"), b'"ok"'),
        ("readyz from 127.0.0.1", ATTACKER, _get(port, "/readyz"), b'"ready"'),
        ("healthz from 127.0.0.3", BALANCER, _get(port, "/healthz"), b'"ok"'),
        ("readyz from 127.0.0.3", BALANCER, _get(port, "/readyz"), b'"ready"'),
        ("kb_search from 127.0.0.2", CLIENT, _search(port), b'"hits"'),
    ]
    for name, *_ in probes:
        tallies[name] = Tally()

    async def one(name: str, source: str, request: bytes, want: bytes) -> None:
        outcome, elapsed = await _exchange(port, source, request, timeout_s, want=want)
        tallies[name].record(outcome, elapsed)

    async with asyncio.TaskGroup() as tasks:
        while not stop.is_set():
            for probe in probes:
                tasks.create_task(one(*probe))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)


async def run(args: Any) -> dict[str, Any]:
    prologue = ""
    if args.limits:
        pairs = dict(item.split("=", 1) for item in args.limits)
        values = ", ".join(f"{k}={float(v) if '.' in v else int(v)!r}" for k, v in pairs.items())
        prologue = (
            "import functools, kb_mcp.runtime.http_transport as t; "
            f"t.HttpLimits = functools.partial(t.HttpLimits, {values}); "
        )
    tree = Path(args.server_tree) if args.server_tree else ROOT
    async with open_stack() as stack:
        port = free_port()
        env = stack.environment(KB_MCP_LOG_LEVEL="WARNING", PYTHONPATH=str(tree))
        argv = python_argv(
            prologue, "kb_mcp.cli:main", "serve", "--transport", "http", "--port", str(port)
        )
        async with spawn("kb-mcp", argv, env, port, "/readyz", cwd=tree):
            attacker = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bench.bench_edge", "--attack", str(port)),
                *("--connections", str(args.connections), "--reopen-ms", str(args.reopen_ms)),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert attacker.stdin is not None
            assert attacker.stdout is not None
            await attacker.stdout.readline()  # "placed": every idle connection is open
            stop_probe, tallies = asyncio.Event(), dict[str, Tally]()
            probing = asyncio.create_task(
                _probe(port, tallies, args.every_ms / 1000, args.timeout_ms / 1000, stop_probe)
            )
            with suppress(TimeoutError):
                await asyncio.wait_for(stop_probe.wait(), args.seconds)
            stop_probe.set()
            await probing
            attacker.stdin.close()  # the attacker stops and reports
            attack = json.loads(await attacker.stdout.readline())
            await attacker.wait()
    rows = [tally.row(name) for name, tally in tallies.items()]
    print_table(
        f"{args.connections} idle connections from {ATTACKER} for {args.seconds} s",
        ["probe", "sent", "ok", "ok %", "longest ms", "failures"],
        rows,
    )
    health = [t for name, t in tallies.items() if name.startswith(("healthz", "readyz"))]
    tool = tallies["kb_search from 127.0.0.2"]
    return {
        "idle_connections": args.connections,
        "seconds": args.seconds,
        "limits": args.limits or [],
        "server_tree": str(tree),
        "health_sent": sum(t.sent for t in health),
        "health_ok": sum(t.ok for t in health),
        "health_longest_ms": round(max(t.longest_s for t in health) * 1000),
        "tool_calls_sent": tool.sent,
        "tool_calls_ok": tool.ok,
        "tool_call_longest_ms": round(tool.longest_s * 1000),
        "idle_opened": attack["opened"],
        "idle_closed_on_arrival": attack["closed_on_arrival"],
        "idle_reset": attack["reset"],
        "probes": {name: tally.row(name)[1:] for name, tally in tallies.items()},
    }


async def attack_until_stdin_closes(port: int, connections: int, reopen_s: float) -> None:
    """The attacker, in a process of its own (so its churn does not slow the probes):
    prints "placed" once every connection is open, its counts as JSON when stdin closes."""
    stop, attack = asyncio.Event(), Attack(connections)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with asyncio.TaskGroup() as tasks:
        for _ in range(connections):
            tasks.create_task(_hold(port, attack, reopen_s, stop))
        await attack.placed.wait()
        print("placed", flush=True)
        await stdin.read()
        stop.set()
    counts = {"opened": attack.opened, "closed_on_arrival": attack.closed_on_arrival}
    print(json.dumps({**counts, "reset": attack.reset}), flush=True)


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--attack", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--every-ms", type=float, default=200.0)
    parser.add_argument("--timeout-ms", type=float, default=2000.0)
    parser.add_argument("--reopen-ms", type=float, default=50.0)
    parser.add_argument("--limits", action="append", metavar="NAME=VALUE")
    parser.add_argument("--server-tree", metavar="DIR")
    args = parser.parse_args()
    if args.attack:
        asyncio.run(attack_until_stdin_closes(args.attack, args.connections, args.reopen_ms / 1000))
        return
    if args.quick:
        args.seconds = min(args.seconds, 3.0)
    configure_logging(json_lines=True, level="WARNING")
    host = machine()
    figures = asyncio.run(run(args))
    print_table(
        "figures", ["figure", "value"], [[k, v] for k, v in figures.items() if k != "probes"]
    )
    finish("bench_edge", figures, quick=args.quick, as_json=args.json, host=host)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
