"""`kb-mcp import` and `kb-mcp export` as commands: they boot the runtime serve boots
(secrets from Secrets Manager, migrations), import a tree, skip it when run again, and
export what was stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.runtime_env import RuntimeEnv


def _kb_mcp(env: RuntimeEnv, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kb_mcp", *argv],
        env=env.process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_then_export_through_the_command_line(env: RuntimeEnv, tmp_path: Path) -> None:
    """import stores every file and prints a summary; again, every file is unchanged, and a
    failed record is named and makes exit 1; export writes the documents as JSONL."""
    tree = tmp_path / "docs"
    (tree / "sub").mkdir(parents=True)
    for i in range(6):
        (tree / "sub" / f"page{i}.md").write_text(f"# Page {i}\n\nbody {i}\n", encoding="utf-8")
    first = _kb_mcp(env, "import", str(tree), "--namespace", "site", "--no-progress")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "imported 6 records" in first.stdout
    assert "6 created" in first.stdout
    (tree / "bad.jsonl").write_text("[1]\n", encoding="utf-8")
    again = _kb_mcp(env, "import", str(tree), "--namespace", "site", "--no-progress")
    assert again.returncode == 1
    assert "6 unchanged" in again.stdout
    assert "1 failed" in again.stdout
    assert "failed  bad.jsonl:1: not a JSON object" in again.stderr
    out = tmp_path / "export.jsonl"
    exported = _kb_mcp(env, "export", "--namespace", "site", "--output", str(out))
    assert exported.returncode == 0, exported.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["external_id"] for r in records) == [f"sub/page{i}.md" for i in range(6)]
    assert {r["namespace"] for r in records} == {"site"}
    assert {r["title"] for r in records} == {f"Page {i}" for i in range(6)}
