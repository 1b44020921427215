"""The package's layers (`.importlinter`) hold, and an upward import would break them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kb_mcp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(kb_mcp.__file__).resolve().parent
CONFIG = ROOT / ".importlinter"


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the package found on `pythonpath`, with the repository's contract."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    code = "import sys, importlinter.cli as c; sys.exit(c.lint_imports(no_cache=True))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_layer_contracts_are_kept() -> None:
    """Every module imports only from layers below its own; the hot-swap core is a leaf."""
    result = _lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """A copy of the package where the hot-swap layer imports the supervisor fails the check."""
    copy = tmp_path / "kb_mcp"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    load = copy / "hotswap" / "load.py"
    load.write_text(
        load.read_text(encoding="utf-8") + "\nfrom kb_mcp.runtime import supervisor\n",
        encoding="utf-8",
    )
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Layers point down BROKEN" in result.stdout
    assert "kb_mcp.hotswap.load -> kb_mcp.runtime" in result.stdout
