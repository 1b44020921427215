"""The secrets package's coverage floor fails a whole-suite run that does not reach it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.plugins.coverage_gate import SECRETS_FLOOR_PERCENT

REPO = Path(__file__).resolve().parents[2]


def test_a_suite_covering_too_little_of_kb_mcp_secrets_fails(tmp_path: Path) -> None:
    """A "whole suite" of one config test leaves kb_mcp/secrets far below 90%: exit 1."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "testpaths=tests/unit/test_config.py",
            "--cov-report=term:skip-covered",
        ],
        cwd=REPO,
        env={**os.environ, "COVERAGE_FILE": str(tmp_path / ".coverage")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert " passed" in result.stdout
    assert " failed" not in result.stdout
    assert "coverage of kb_mcp/secrets" in result.stdout
    assert f"is below {SECRETS_FLOOR_PERCENT:.0f}%" in result.stdout
