"""`bench/_cpu.py` reads real processes' CPU: a blocked process uses none, a busy one its work.

Each child says on stdout when it is where the test wants it (blocked on its stdin, or
done burning), so the readings around it are taken at known points, never after a sleep.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._cpu import CpuMeter, cpu_seconds

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")

BLOCKED = "import sys; print('ready', flush=True); sys.stdin.readline()"
"""Says ready, then waits on its stdin without running."""

BURN = """
import sys, time
print('ready', flush=True)
sys.stdin.readline()
end = time.process_time() + float(sys.argv[1])
while time.process_time() < end:
    pass
print('burnt', flush=True)
sys.stdin.readline()
"""
"""Says ready; on a line burns argv[1] CPU seconds, says burnt, and waits again."""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    spawned: list[subprocess.Popen[str]] = []
    yield spawned
    for child in spawned:
        child.kill()
        child.wait(timeout=10)


def _say(child: subprocess.Popen[str], expect: str | None = None) -> None:
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("\n")
    child.stdin.flush()
    if expect is not None:
        assert child.stdout.readline().strip() == expect


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or not Path("/proc/self/schedstat").exists(),
    reason="no schedstat on this kernel: the meter falls back to 10 ms ticks",
)
def test_a_blocked_process_reads_zero_and_a_busy_one_its_work(
    children: list[subprocess.Popen[str]],
) -> None:
    """Finer than the 10 ms clock tick: 5 ms of work reads as 5 ms, not as 0 or 10."""
    idle = _spawn(BLOCKED)
    busy = _spawn(BURN, "0.005")
    children += [idle, busy]
    meter = CpuMeter(processes={"idle": idle.pid, "busy": busy.pid})

    before = meter.read()
    _say(busy, "burnt")
    used = CpuMeter.used(before, meter.read())

    assert used["idle"] < 0.001  # at most the end of its last write before it blocked
    assert 0.005 <= used["busy"] < 0.009


def test_children_are_grouped_by_their_command_line(
    children: list[subprocess.Popen[str]],
) -> None:
    """A parent's children count in a group when their command line holds its marker, and
    the parent itself does not."""
    parent_code = f"""
import subprocess, sys
burn = {BURN!r}
kids = [
    subprocess.Popen([sys.executable, "-c", burn, "0.1", mark],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for mark in ("counted-child", "other-child")
]
for kid in kids:
    assert kid.stdout.readline().strip() == "ready"
print("ready", flush=True)
sys.stdin.readline()
for kid in kids:
    kid.stdin.write("\\n")
    kid.stdin.flush()
for kid in kids:
    assert kid.stdout.readline().strip() == "burnt"
print("burnt", flush=True)
sys.stdin.readline()
for kid in kids:
    kid.kill()
"""
    parent = _spawn(parent_code)
    children.append(parent)
    meter = CpuMeter(children_of={"counted": (parent.pid, "counted-child")})

    before = meter.read()
    assert len(before["counted"]) == 1  # one child of two matches; the parent is no child
    _say(parent, "burnt")
    used = CpuMeter.used(before, meter.read())

    assert 0.1 <= used["counted"] < 0.15  # the other child's 0.1 s is not in it


def test_a_process_that_is_gone_reads_nothing(children: list[subprocess.Popen[str]]) -> None:
    child = _spawn(BLOCKED)
    child.kill()
    child.wait(timeout=10)
    assert cpu_seconds(child.pid) is None
    assert CpuMeter(processes={"gone": child.pid}).read() == {"gone": {}}
