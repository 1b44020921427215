"""Every benchmark script runs in quick mode and prints its figures (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
PARALLEL = 2
"""Scripts run side by side: each is mostly waiting (servers starting, polls, sleeps)."""
TIMEOUT_S = 240
"""One script's quick run."""
ALL_RUNS_TIMEOUT_S = TIMEOUT_S * (len(SCRIPTS) + PARALLEL - 1) // PARALLEL + 60
"""The module's fixture runs every script inside the first test that asks for it: that
test's budget (pytest-timeout counts its setup) is every script's, a few at a time."""


def _run(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", "--json"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def figures_in(stdout: str) -> Any:
    """The JSON a benchmark printed: a JSON line, or its whole output as one document."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    start = text.rfind("\n{")
    if start >= 0:
        return json.loads(text[start + 1 :])
    raise AssertionError("no JSON figures in the output")


@pytest.fixture(scope="module")
def quick_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """Each script's quick run, a few at a time."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return dict(zip(SCRIPTS, pool.map(_run, SCRIPTS), strict=True))


def test_benchmark_scripts_are_found() -> None:
    """bench/ holds the runtime benchmarks (and whatever else is there is run too)."""
    assert {"bench_rotation", "bench_fleet", "bench_boot", "bench_search"} <= set(SCRIPTS)


@pytest.mark.timeout(ALL_RUNS_TIMEOUT_S)
@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_run_exits_zero_and_prints_figures(
    name: str, quick_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """`python -m bench.<name> --quick --json` exits 0 and prints figures that parse."""
    result = quick_runs[name]
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stderr[-3000:]}"
    figures = figures_in(result.stdout)
    assert isinstance(figures, dict)
    assert figures


def test_bench_mcp_variants_are_settings_and_nothing_else() -> None:
    """`--variant` takes `KB_MCP_*=value` pairs; anything else is refused before a server starts."""
    from bench.bench_mcp import variant_environment

    assert variant_environment("KB_MCP_EMBEDDING_MAX_CALLS=0;KB_MCP_X=a=b") == {
        "KB_MCP_EMBEDDING_MAX_CALLS": "0",
        "KB_MCP_X": "a=b",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.bench_mcp", "--quick", "--variant", "PATH=/tmp"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "KB_MCP_NAME=VALUE" in result.stderr


@pytest.mark.timeout(ALL_RUNS_TIMEOUT_S)
def test_bench_mcp_reports_cpu_per_request_of_each_process_group(
    quick_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """Every row says where a request's CPU went; the floor touches neither the endpoint
    nor PostgreSQL, a search touches both."""
    rows = figures_in(quick_runs["bench_mcp"].stdout)["figures"]["rows"]
    assert rows
    for row in rows:
        cpu = row["cpu_ms_per_request"]
        assert set(cpu) == {"client", "server", "endpoint", "postgres"}
        assert all(value >= 0 for value in cpu.values())
        assert cpu["client"] > 0
        assert cpu["server"] > 0
    floors = [r["cpu_ms_per_request"] for r in rows if r["target"] == "floor"]
    searches = [r["cpu_ms_per_request"] for r in rows if r["target"] == "kb_search"]
    assert all(c["endpoint"] < 0.2 and c["postgres"] < 0.2 for c in floors)
    assert all(c["endpoint"] > 0 and c["postgres"] > 0 for c in searches)


@pytest.mark.timeout(ALL_RUNS_TIMEOUT_S)
def test_bench_mcp_gives_every_phase_the_seeded_table(
    quick_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """What a `kb_add` phase stored is deleted before the next phase, and only then: every
    call's document (and each session's warm-up call's) is counted as removed."""
    rows = figures_in(quick_runs["bench_mcp"].stdout)["figures"]["rows"]
    adds = [r for r in rows if r["target"].startswith("kb_add")]
    assert adds
    for row in adds:
        assert row["documents_removed_after"] >= row["requests"] - row["errors"] > 0
    assert all(r["documents_removed_after"] == 0 for r in rows if r not in adds)


def test_bench_retrieval_lists_only_tuning_questions_it_misses() -> None:
    """`--tuning-misses` lists questions of the tuning half (odd positions) only, each one
    hybrid does not rank first, and counts every listed question in exactly one class."""
    from bench.bench_retrieval import stdlib_set

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_retrieval",
            "--quick",
            "--json",
            "--latency-docs",
            "0",
            "--no-grid",
            "--tuning-misses",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (quality,) = figures_in(result.stdout)["figures"]["quality"]
    misses = quality["tuning_misses"]
    questions = stdlib_set(120).questions
    tuning = {query for _, query, _ in questions[1::2]}
    listed = [row[4] for row in misses["questions"]]
    assert listed
    assert set(listed) <= tuning
    assert all(row[1] != 1 for row in misses["questions"])
    assert sum(misses["classes"].values()) == len(listed)
