"""Checked-in artifacts a command produces are what that command produces today."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AUDIT_REPORT = REPO / "_implementation" / "AUDIT-REPORT.md"
# What changes with every commit or run: when, and how many files and commits were read.
_VOLATILE = re.compile(r"^- (When|Files scanned|History): .*$", re.MULTILINE)


def _stable(report: str) -> str:
    return _VOLATILE.sub(lambda m: f"- {m.group(1)}: ...", report)


@pytest.mark.skipif(
    not (REPO / ".git").exists() or shutil.which("git") is None, reason="not a git checkout"
)
def test_the_checked_in_audit_report_is_current(tmp_path: Path) -> None:
    """`kb-mcp secrets audit --report` today says what _implementation/AUDIT-REPORT.md says,
    counts and time aside (regenerate it with that command when this fails)."""
    fresh = tmp_path / "AUDIT-REPORT.md"
    done = subprocess.run(
        [sys.executable, "-m", "kb_mcp", "secrets", "audit", "--report", str(fresh)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _stable(fresh.read_text()) == _stable(AUDIT_REPORT.read_text()), (
        "stale: run kb-mcp secrets audit --report _implementation/AUDIT-REPORT.md"
    )
