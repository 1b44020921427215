"""The README's install (`pip install -e ./secretswap -e '.[local]'` in a fresh venv) runs
every ops command.

Slow (a real pip install into a new venv, from the machine's package index or cache).
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def local_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with kb-mcp installed as the README says: the hot-swap library it depends
    on (not on PyPI) from its folder, then `-e '.[local]'`."""
    root = tmp_path_factory.mktemp("local-install") / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    done = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", "-e", str(REPO / "secretswap"), "-e", f"{REPO}[local]"],
        capture_output=True, text=True, timeout=1100,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def _kb_mcp(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "bin" / "kb-mcp"), *args], capture_output=True, text=True, timeout=120,
        cwd=REPO,
    )  # fmt: skip


def test_secrets_audit_help_works_after_the_local_install(local_venv: Path) -> None:
    """`kb-mcp secrets audit --help` exits 0 (detect-secrets comes with the local extra)."""
    done = _kb_mcp(local_venv, "secrets", "audit", "--help")
    assert done.returncode == 0, done.stderr
    assert "--report" in done.stdout


def test_secrets_audit_runs_without_dirtying_the_checkout(local_venv: Path) -> None:
    """The audit itself runs from that install and leaves `git status` as it was."""
    status = ["git", "-C", str(REPO), "status", "--porcelain"]
    before = subprocess.run(status, capture_output=True, text=True, check=True).stdout
    done = _kb_mcp(local_venv, "secrets", "audit", "--history-depth", "0")
    after = subprocess.run(status, capture_output=True, text=True, check=True).stdout
    assert done.returncode in (0, 1), done.stderr
    assert "ModuleNotFoundError" not in done.stderr
    assert after == before


def test_secrets_policy_check_works_after_the_local_install(local_venv: Path) -> None:
    """`kb-mcp secrets policy ... --check` lints with parliament from the local extra."""
    done = _kb_mcp(
        local_venv, "secrets", "policy", "--account", "123456789012", "--region", "us-east-1",
        "--env", "prod", "--check",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"Statement"' in done.stdout


def test_audit_without_the_scanner_says_what_to_install(tmp_path: Path) -> None:
    """Where detect-secrets is missing, the audit says in one line what to install."""
    blocker = tmp_path / "detect_secrets"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(name='detect_secrets')\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from kb_mcp.cli import main; "
        "sys.exit(main(['secrets', 'audit', '--files']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "kb-mcp: secrets audit needs detect-secrets: pip install 'kb-mcp[local]' "
        "(or pip install detect-secrets)"
    ]
