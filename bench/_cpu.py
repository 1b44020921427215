"""CPU time of the processes behind a benchmark, read from `/proc` (Linux).

`CpuMeter` names groups of processes (a server by its pid; PostgreSQL's backends as the
postmaster's children whose command line names a client address, so that autovacuum and
the other background workers are left out) and reads their CPU seconds; two readings
around a phase give each group's CPU for it, which a benchmark divides by the requests
served. Where `/proc` is missing (not Linux) every reading is empty and the figures are
left out rather than guessed.

A process's CPU is the run time the scheduler counts for each of its threads, in
nanoseconds (`/proc/PID/task/TID/schedstat`). The user and system times of
`/proc/PID/stat` move in clock ticks (10 ms here), and a phase of a quick run serves a few
dozen requests: one tick of an idle server's housekeeping crossing a boundary read as
0.2 ms a request. They are the fallback where `schedstat` is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CpuMeter", "cpu_seconds"]

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of `pid`, or None when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after the command name, which may hold spaces
    try:
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS
    except (IndexError, ValueError):
        return None


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _run_time(pid: int) -> float | None:
    """Seconds the scheduler has run `pid`'s live threads, or None when `pid` is gone or
    the kernel keeps no `schedstat` (a thread that ends between listing and reading is
    skipped: its time leaves the total with it)."""
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return None
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text(encoding="ascii").split()[0])
        except FileNotFoundError:
            if task.exists():
                return None  # no schedstat on this kernel
        except (OSError, IndexError, ValueError):
            return None
    return total / 1e9


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds `pid` has used (its threads' run time, else its ticks), or None."""
    seconds = _run_time(pid)
    if seconds is not None:
        return seconds
    stat = _stat(pid)
    return None if stat is None else stat[1]


@dataclass
class CpuMeter:
    """Named groups of processes whose CPU a benchmark reads around each phase."""

    processes: dict[str, int] = field(default_factory=dict)
    """Group name -> the pid of one process."""
    children_of: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Group name -> (a parent pid, text in the command line of the children that count)."""

    @property
    def available(self) -> bool:
        return _PROC.is_dir()

    def read(self) -> dict[str, dict[int, float]]:
        """Per group, the CPU seconds of each of its processes now."""
        if not self.available:
            return {}
        readings: dict[str, dict[int, float]] = {}
        for name, pid in self.processes.items():
            seconds = cpu_seconds(pid)
            readings[name] = {} if seconds is None else {pid: seconds}
        if self.children_of:
            parents = {parent: (name, mark) for name, (parent, mark) in self.children_of.items()}
            for name in self.children_of:
                readings[name] = {}
            for entry in _PROC.iterdir():
                if not entry.name.isdigit():
                    continue
                stat = _stat(int(entry.name))
                if stat is None or stat[0] not in parents:
                    continue
                name, marker = parents[stat[0]]
                if marker not in _cmdline(entry):
                    continue
                seconds = cpu_seconds(int(entry.name))
                if seconds is not None:
                    readings[name][int(entry.name)] = seconds
        return readings

    @staticmethod
    def used(
        before: Mapping[str, Mapping[int, float]], after: Mapping[str, Mapping[int, float]]
    ) -> dict[str, float]:
        """CPU seconds each group used between two readings (processes that started in
        between count from zero; those that ended are not counted, nor is the run time of
        a thread that ended: a process never counts less than zero)."""
        return {
            name: sum(
                max(0.0, seconds - before.get(name, {}).get(pid, 0.0))
                for pid, seconds in now.items()
            )
            for name, now in after.items()
        }
