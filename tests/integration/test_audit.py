"""The secret audit against real git repositories made at run time, and against this one.

Every planted credential is built here by concatenation from random parts, so this file
holds no literal credential; each is also watched by the suite's log-leak guard.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import string
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; only safe_load is used

from kb_mcp.errors import ConfigError
from kb_mcp.ops import audit
from kb_mcp.ops.audit.detectors import fingerprint, is_placeholder
from kb_mcp.ops.audit.scan import AuditResult, run_audit
from tests.support.fakes import watch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALNUM = string.ascii_letters + string.digits
GIT_IDENTITY = ("-c", "user.name=ci", "-c", "user.email=ci@example.invalid")


def _random(alphabet: str, length: int) -> str:
    """Random characters with a digit and a letter that no placeholder rule mistakes."""
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
        if mixed and not is_placeholder(value):  # e.g. a random "xxx" inside
            return value


@dataclass(frozen=True)
class Planted:
    """A fake credential of one shape, the detector that must name it, and where it goes."""

    shape: str
    detector: str
    value: str
    path: str
    line: str


def _private_key_lines() -> list[str]:
    body = [_random(ALNUM + "+/", 64) for _ in range(3)]  # base64 lines of a PEM body
    kind = "RSA " + "PRIVATE" + " KEY"
    return ["-----BEGIN " + kind + "-----", *body, "-----END " + kind + "-----"]


def _plant() -> tuple[list[Planted], dict[str, list[str]]]:
    """One fake secret of every shape, and the files (path -> lines) that hold them."""
    upper = string.ascii_uppercase + string.digits
    key = _private_key_lines()
    planted = [
        Planted("openai project key", "openai-api-key", "sk-" + "proj-" + _random(ALNUM + "-_", 64),
                "app/settings.py", 'OPENAI_API_KEY = "{v}"'),
        Planted("openai key, no marker", "openai-api-key", "sk-" + _random(ALNUM, 48),
                "app/clients.py", 'client = AsyncOpenAI(api_key="{v}")'),
        Planted("openai key with marker", "openai-api-key",
                "sk-" + _random(ALNUM, 20) + "T3Blbk" + "FJ" + _random(ALNUM, 20),
                "docs/setup.md", "export OPENAI_API_KEY={v}"),
        Planted("aws access key id", "aws-access-key-id", "AK" + "IA" + _random(upper, 16),
                "deploy/main.tf", 'access_key = "{v}"'),
        Planted("aws temporary key id", "aws-access-key-id", "AS" + "IA" + _random(upper, 16),
                "deploy/credentials.ini", "aws_access_key_id = {v}"),
        Planted("aws secret access key", "aws-secret-access-key", _random(ALNUM + "/+", 40),
                "deploy/credentials.ini", "aws_secret_access_key = {v}"),
        Planted("postgres dsn", "postgres-dsn", _random(ALNUM, 20),
                "docker-compose.yml", "      DATABASE_URL: postgresql://kb:{v}@db:5432/kb"),
        Planted("postgres dsn with driver", "postgres-dsn", _random(ALNUM, 16),
                "app/db.py", 'DSN = "postgres' + 'ql+asyncpg://kb:{v}@db.internal/kb"'),
        Planted("PGPASSWORD in a script", "password-assignment", _random(ALNUM, 18),
                "scripts/connect.sh", "export PGPASSWORD={v}"),
        Planted("DB_PASSWORD in code", "password-assignment", _random(ALNUM, 18),
                "app/settings.py", 'DB_PASSWORD = "{v}"'),
        Planted("password in json", "password-assignment", _random(ALNUM, 18),
                "config/app.json", '{{"username": "kb", "password": "{v}"}}'),
        Planted("private key", "private-key", key[1], "deploy/server.pem", ""),
        Planted("high-entropy base64", "high-entropy-base64", _random(ALNUM + "+/", 64),
                "app/settings.py", 'WEBHOOK_SIGNING_KEY = "{v}"'),
        Planted("high-entropy hex", "high-entropy-hex", _random(string.hexdigits.lower(), 64),
                "app/settings.py", 'SESSION_KEY = "{v}"'),
    ]  # fmt: skip
    files: dict[str, list[str]] = {"deploy/server.pem": key}
    for item in planted:
        if item.line:
            files.setdefault(item.path, ["# planted by the audit test"]).append(
                item.line.format(v=item.value)
            )
    watch(*(item.value for item in planted), *key[1:-1])
    return planted, files


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, "-c", "commit.gpgsign=false", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _write(repo: Path, files: dict[str, list[str]]) -> None:
    for rel, lines in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository whose `.gitignore` covers `.env`, with one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".env\n", encoding="utf-8")
    _git(root, "add", ".gitignore")
    _git(root, "commit", "-q", "-m", "start")
    return root


def _audit(root: Path, *, depth: int = 100, files: list[Path] | None = None) -> AuditResult:
    return run_audit(root, history_depth=depth, files=files, allowlist=None)


def _pairs(result: AuditResult, kind: str) -> set[tuple[str, str, str]]:
    return {(f.full_fingerprint, f.detector, f.path) for f in result.findings if f.kind == kind}


def _handler(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser()
    audit.register(parser.add_subparsers())
    args = parser.parse_args(["audit", *argv])
    code: int = args.handler(args)
    return code


def test_tree_scan_finds_every_shape_with_its_detector(repo: Path) -> None:
    """Each planted shape in the working tree is found, by the detector named for it."""
    planted, files = _plant()
    _write(repo, files)
    result = _audit(repo)
    found = _pairs(result, "secret")
    missing = [p.shape for p in planted if (fingerprint(p.value), p.detector, p.path) not in found]
    assert missing == []
    assert len(result.findings) == len(planted)
    assert result.exit_code == 1


def test_history_finds_secrets_a_later_commit_removed(repo: Path) -> None:
    """Secrets committed then deleted are found in history with commit and path."""
    planted, files = _plant()
    _write(repo, files)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "add config")
    added = _git(repo, "rev-parse", "HEAD")
    _git(repo, "rm", "-q", "-r", *files)
    _git(repo, "commit", "-q", "-m", "remove config")

    result = _audit(repo)

    assert _pairs(result, "secret") == set()
    history = {(f.full_fingerprint, f.detector, f.path, f.commit) for f in result.findings}
    missing = [
        p.shape for p in planted if (fingerprint(p.value), p.detector, p.path, added) not in history
    ]
    assert missing == []
    assert result.commits_scanned == 3
    assert all(f.location.startswith(added[:12] + ":") for f in result.findings)


def test_history_depth_limits_and_disables_the_history_scan(repo: Path) -> None:
    """`history_depth` counts commits from HEAD; 0 turns the history scan off."""
    _, files = _plant()
    _write(repo, files)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "add config")
    _git(repo, "rm", "-q", "-r", *files)
    _git(repo, "commit", "-q", "-m", "remove config")

    only_removal = _audit(repo, depth=1)
    disabled = _audit(repo, depth=0)

    assert (only_removal.commits_scanned, only_removal.findings) == (1, [])
    assert (disabled.commits_scanned, disabled.findings, disabled.exit_code) == (0, [], 0)


def test_env_holding_a_password_fails(repo: Path) -> None:
    """An ignored `.env` with DB_PASSWORD=<random> fails the policy and is a local secret."""
    password = _random(ALNUM, 20)
    watch(password)
    _write(repo, {".env": ["KB_MCP_ENV=development", "DB_PASSWORD=" + password]})

    result = _audit(repo)

    failures = {(c.path, c.check) for c in result.env_failures}
    assert failures == {(".env", "sensitive-values")}
    assert "DB_PASSWORD (line 2)" in result.env_failures[0].detail
    assert [(f.kind, f.path, f.detector) for f in result.findings] == [
        ("local-secret", ".env", "password-assignment")
    ]
    assert result.exit_code == 1


def test_env_not_ignored_fails(repo: Path) -> None:
    """`.env` missing from .gitignore fails, and so does a `.env` tracked by git."""
    (repo / ".gitignore").write_text("", encoding="utf-8")
    _write(repo, {".env": ["KB_MCP_ENV=development"]})
    not_ignored = _audit(repo)

    (repo / ".gitignore").write_text(".env\n", encoding="utf-8")
    _git(repo, "add", "-f", ".env")
    tracked = _audit(repo)

    assert {(c.path, c.check, c.detail) for c in not_ignored.env_failures} == {
        (".env", "git-ignored", "add .env to .gitignore"),
        (".env", "git-ignored", "not git-ignored"),
    }
    assert [(c.path, c.detail) for c in tracked.env_failures] == [
        (".env", "tracked by git: git rm --cached")
    ]
    assert not_ignored.exit_code == tracked.exit_code == 1


def test_env_example_with_empty_values_passes(repo: Path) -> None:
    """A tracked `.env.example` with empty or placeholder sensitive values is clean."""
    example = [
        "KB_MCP_ENV=development",
        "AWS_REGION=us-east-1",
        "KB_MCP_AUTH_TOKEN_SECRET=kb-mcp/dev/auth-token",
        "OPENAI_API_KEY=",
        "DB_PASSWORD=",
        "PGPASSWORD=<password>",
        "AWS_ACCESS_KEY_ID=testing",
        "AWS_SECRET_ACCESS_KEY=changeme",
        'KB_MCP_AUTH_TOKEN=""',
    ]
    _write(repo, {".env.example": example})
    _git(repo, "add", ".env.example")

    result = _audit(repo)

    assert result.findings == []
    assert {(c.path, c.check, c.ok) for c in result.env_checks} == {
        (".env", "git-ignored", True),
        (".env.example", "sensitive-values", True),
    }
    assert result.exit_code == 0


def test_placeholders_and_runtime_values_do_not_count(repo: Path) -> None:
    """References, placeholders, run-time built values and pragma lines are not findings."""
    real_looking = "sk-" + _random(ALNUM, 48)
    watch(real_looking)
    code = [
        'OPENAI_API_KEY = os.environ["OPENAI_API_KEY"]',
        'key = "sk-test-" + secrets.token_hex(24)',
        'project_key = "sk-" + "proj-" + secrets.token_urlsafe(40)',
        'DB_PASSWORD = "${DB_PASSWORD}"',
        'password = "$DB_PASSWORD"',
        'password = "<password>"',
        'password = "changeme"',
        'password = "xxxxxxxxxx"',
        'password = "pw-" + secrets.token_hex(8)',
        "conn = await asyncpg.connect(password=creds.password.get_secret_value())",
        'dsn = f"postgresql://{user}:{password}@{host}/kb"',
        'url = "postgresql://kb:${DB_PASSWORD}@db/kb"',
        'aws_key_id = "' + "AK" + "IA" + "IOSFODNN7" + "EXAMPLE" + '"',
        'monkeypatch.setenv("DB_PASSWORD", value)',
        'NAMES = ("DB_PASSWORD", "PGPASSWORD")',
        "# a PEM file starts with -----BEGIN " + "PRIVATE KEY-----",
        'api_key = "' + real_looking + '"  # pragma: allowlist secret',
    ]
    shell = ['export PGPASSWORD="$(aws secretsmanager get-secret-value)"', "unset PGPASSWORD"]
    compose = ["services:", "  db:", "    environment:", "      POSTGRES_PASSWORD: ${DB_PASSWORD}"]
    _write(repo, {"app/placeholders.py": code, "run.sh": shell, "compose.yaml": compose})

    result = _audit(repo)

    assert [(f.location, f.detector) for f in result.findings] == []
    assert result.exit_code == 0


def test_allowlist_suppresses_with_a_reason_and_reports_allowed(repo: Path) -> None:
    """A matching entry moves a finding to `allowed` with its reason; unused entries show."""
    password = _random(ALNUM, 18)
    watch(password)
    _write(repo, {"tests/fixtures/config.json": ['{"password": "' + password + '"}']})
    reason = "documented fake credential of the config loader test"
    entries = [
        {"path": "tests/fixtures/*.json", "detector": "password-assignment",
         "fingerprint": fingerprint(password)[:16], "reason": reason},
        {"path": "nowhere/*", "detector": "*", "fingerprint": "0" * 16, "reason": "stale"},
    ]  # fmt: skip
    (repo / ".secrets-allowlist.json").write_text(json.dumps({"entries": entries}), "utf-8")
    report = repo / "out" / "report.md"

    result = _audit(repo)
    code = _handler(["--root", str(repo), "--report", str(report)])

    assert result.findings == []
    assert [(f.path, f.allowed_reason) for f in result.allowed] == [
        ("tests/fixtures/config.json", reason)
    ]
    assert [entry.reason for entry in result.unused_allowlist] == ["stale"]
    assert code == 0
    text = report.read_text(encoding="utf-8")
    assert "## Allowed (allowlist)" in text
    assert reason in text
    assert password not in text


def test_allowlist_entry_without_reason_is_rejected(repo: Path) -> None:
    """Every allowlist entry needs a reason: without one the audit refuses to run (exit 2)."""
    entry = {"path": "*", "detector": "*", "fingerprint": "0" * 16, "reason": " "}
    (repo / ".secrets-allowlist.json").write_text(json.dumps({"entries": [entry]}), "utf-8")

    with pytest.raises(ConfigError, match="lacks reason"):
        _audit(repo)
    assert _handler(["--root", str(repo), "--no-report"]) == 2


def test_report_and_json_never_hold_a_planted_value(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Markdown report and `--json` show previews and fingerprints, never a value."""
    planted, files = _plant()
    _write(repo, files)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "add config")
    report = repo.parent / "audit-report.md"

    code = _handler(["--root", str(repo), "--json", "--report", str(report)])

    output = capsys.readouterr().out
    text = report.read_text(encoding="utf-8")
    document = json.loads(output)
    values = [p.value for p in planted] + files["deploy/server.pem"][1:-1]
    assert [v for v in values if v in text or v in output] == []
    assert code == 1
    assert document["verdict"] == "fail"
    assert len(document["findings"]) == 2 * len(planted)  # tree and history
    assert {f["kind"] for f in document["findings"]} == {"secret", "history"}
    for finding in document["findings"]:
        assert finding["preview"].endswith("\u2026")
        assert len(finding["preview"]) <= 5
        assert f"`{finding['preview']}` | {finding['fingerprint']}" in text
    assert "**Verdict: FAIL" in text
    assert "- History: 2 commit(s) (depth 100)" in text


def test_audit_without_report_leaves_the_checkout_clean(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without `--report` the audit writes no file: `git status` is as clean after as before."""
    _write(repo, {"notes.txt": ["nothing secret here"]})
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "notes")
    before = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--ignored"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip

    code = _handler(["--root", str(repo)])

    after = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--ignored"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert code == 0
    assert after == before
    assert "report:" not in capsys.readouterr().out


def test_files_mode_scans_only_the_given_files(repo: Path) -> None:
    """`--files` scans exactly those files and no history."""
    planted, files = _plant()
    _write(repo, files)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "add config")

    result = _audit(repo, files=[repo / "app/settings.py", repo / "deploy/server.pem"])

    expected = {(fingerprint(p.value), p.detector, p.path) for p in planted
                if p.path in {"app/settings.py", "deploy/server.pem"}}  # fmt: skip
    assert _pairs(result, "secret") == expected
    assert (result.mode, result.files_scanned, result.commits_scanned) == ("files", 2, 0)
    assert len(result.findings) == len(expected)


def test_pre_commit_hook_runs_the_audit_on_staged_files(repo: Path) -> None:
    """The hook's own entry line, given staged files, scans them and fails on a secret."""
    config = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text("utf-8"))
    (hook,) = [h for r in config["repos"] if r["repo"] == "local" for h in r["hooks"]]
    assert (hook["id"], hook["pass_filenames"]) == ("kb-mcp-secret-audit", True)
    argv = shlex.split(hook["entry"])
    assert argv[:3] == ["kb-mcp", "secrets", "audit"]
    password = _random(ALNUM, 18)
    watch(password)
    _write(repo, {"app/bad.py": ['DB_PASSWORD = "' + password + '"'], "app/ok.py": ["x = 1"]})
    _git(repo, "add", "app")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "kb_mcp", *argv[1:]]

    done = subprocess.run([*command, "app/bad.py", "app/ok.py"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert "secret audit (files): 2 file(s), 0 commit(s); 1 finding(s)" in done.stdout
    assert "app/bad.py:1 password-assignment" in done.stdout
    assert password not in done.stdout + done.stderr
    assert not (repo / "_implementation").exists()


def test_wrapper_script_passes_arguments_through(tmp_path: Path) -> None:
    """`secrets/audit-env-vars.sh` runs `kb-mcp secrets audit` (or python -m) with its args."""
    script = PROJECT_ROOT / "secrets" / "audit-env-vars.sh"
    target = tmp_path / "settings.py"
    target.write_text("x = 1\n", encoding="utf-8")
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "PYTHON": sys.executable}

    done = subprocess.run(
        [str(script), "--no-report", "--history-depth", "0", "--json", "--files", str(target)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert os.access(script, os.X_OK)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files_scanned"] == 1


def test_repository_itself_has_zero_findings() -> None:
    """This checkout (working tree and the last 100 commits) holds no secret."""
    root = Path(
        subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip

    result = run_audit(root, history_depth=100, files=None, allowlist=None)

    assert [(f.kind, f.location, f.detector, f.fingerprint) for f in result.findings] == []
    assert [(c.path, c.check, c.detail) for c in result.env_failures] == []
    assert result.files_scanned > 0
