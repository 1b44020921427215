"""Benchmarks that print figures (never assert timings), and their shared reporting helpers.

Run a benchmark from the repository root as `python -m bench.<name> [--quick] [--json]`:
it prints a short table of figures and the machine, and with `--json` ends with one JSON
line `{"bench": ..., "quick": ..., "machine": {...}, "figures": {...}}`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kb_mcp.hotswap.load import percentile

__all__ = [
    "BENCH_KEY_NAME",
    "BENCH_PG_NAME",
    "bench_parser",
    "finish",
    "latency_summary",
    "machine",
    "percentile",
    "print_table",
    "seed_bench_secrets",
]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """Count and p50/p95/p99/max in milliseconds of latencies given in seconds."""
    return {
        "n": len(seconds),
        "p50_ms": _ms(percentile(seconds, 50)),
        "p95_ms": _ms(percentile(seconds, 95)),
        "p99_ms": _ms(percentile(seconds, 99)),
        "max_ms": _ms(max(seconds) if seconds else None),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def bench_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="CI mode: tiny sizes, seconds")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    return parser


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table on stdout."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def finish(
    name: str,
    figures: Mapping[str, Any],
    *,
    quick: bool,
    as_json: bool,
    host: Mapping[str, Any] | None = None,
) -> None:
    """Print the machine line and, with --json, the one JSON line of figures.

    Pass `host=machine()` taken before the run: its load average is then the machine's
    background load, not the benchmark's own.
    """
    host = dict(host or machine())
    print(
        f"\nmachine: {host['cpu_count']} cpu ({host['cpu_model']}), python {host['python']}, "
        f"{host['platform']}; load average before the run {host['load_avg_1m']}; "
        f"mode {'quick' if quick else 'full'}"
    )
    if as_json:
        line = {"bench": name, "quick": quick, "machine": host, "figures": figures}
        print(json.dumps(line, sort_keys=True))
    sys.stdout.flush()


BENCH_KEY_NAME = "kb-mcp/bench/openai-api-key"
BENCH_PG_NAME = "kb-mcp/bench/postgres-credentials"


def seed_bench_secrets(client: Any) -> None:
    """Create the two benchmark secrets (values generated per run) with a boto client."""
    client.create_secret(Name=BENCH_KEY_NAME, SecretString="sk-bench-" + secrets.token_urlsafe(32))
    client.create_secret(
        Name=BENCH_PG_NAME,
        SecretString=json.dumps(
            {
                "username": "kb_bench",
                "password": "pw-" + secrets.token_urlsafe(24),
                "host": "127.0.0.1",
                "port": 5432,
                "database": "kb",
            }
        ),
    )
