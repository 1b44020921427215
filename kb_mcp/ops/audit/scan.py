"""The secret audit's scan: find committed or local secrets, and check the `.env` policy.

Scans the working tree (git's view of it, plus every `.env*` file even when ignored) and
the last N commits' added lines with the detectors of `detectors`, checks that
`.env*` files hold no sensitive value and that `.env` is git-ignored, applies the
allowlist (`.secrets-allowlist.json`: path glob, detector, fingerprint, reason). The
command (`cli`) exits 1 on any finding and writes a Markdown report (`report`) only when
asked. A finding shows at most four characters of a value and a sha256 fingerprint
prefix, never the value.

    kb-mcp secrets audit [--history-depth N] [--files F ...] [--allowlist P]
                         [--report P | --no-report] [--json]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from detect_secrets.plugins.base import BasePlugin
from detect_secrets.settings import transient_settings

from kb_mcp.errors import ConfigError
from kb_mcp.ops.audit.cli import DEFAULT_HISTORY_DEPTH
from kb_mcp.ops.audit.detectors import (
    Hit,
    build_plugins,
    detector_id,
    fingerprint,
    redact,
    scan_lines,
)
from kb_mcp.ops.audit.history import (
    EnvCheck,
    env_file_checks,
    git_root,
    is_env_file,
    is_ignored,
    iter_added_hunks,
    list_env_files,
    list_worktree_files,
    read_lines,
    root_env_ignore_check,
    tracked_files,
)

__all__ = [
    "DEFAULT_ALLOWLIST",
    "DEFAULT_HISTORY_DEPTH",
    "AllowlistEntry",
    "AuditResult",
    "EnvCheck",
    "Finding",
    "load_allowlist",
    "run_audit",
]

log = structlog.get_logger(__name__)

DEFAULT_ALLOWLIST = Path(".secrets-allowlist.json")
FINGERPRINT_CHARS = 16


@dataclass(frozen=True)
class AllowlistEntry:
    """A documented test fixture: hits of `detector` with `fingerprint` under `path` pass."""

    path: str
    detector: str
    fingerprint: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        """Path glob (fnmatch), detector (or `*`) and fingerprint prefix all agree."""
        from fnmatch import fnmatchcase

        return (
            fnmatchcase(finding.path, self.path)
            and self.detector in {"*", finding.detector}
            and finding.full_fingerprint.startswith(self.fingerprint.lower())
        )


@dataclass(frozen=True)
class Finding:
    """A secret at `path:line` (or `commit:path:line`); `kind` is secret, local-secret or history.

    `local-secret` is a git-ignored file (usually `.env`) that holds a secret on this disk.
    """

    kind: str
    path: str
    line: int
    detector: str
    preview: str
    full_fingerprint: str = field(repr=False)
    commit: str | None = None
    allowed_reason: str | None = None

    @property
    def location(self) -> str:
        """`path:line`, prefixed by the short commit for history findings."""
        place = f"{self.path}:{self.line}"
        return f"{self.commit[:12]}:{place}" if self.commit else place

    @property
    def fingerprint(self) -> str:
        """The sha256 prefix shown in reports and used by allowlist entries."""
        return self.full_fingerprint[:FINGERPRINT_CHARS]

    def as_dict(self) -> dict[str, Any]:
        """JSON form: location, detector, preview and fingerprint prefix, never the value."""
        return {
            "kind": self.kind,
            "location": self.location,
            "path": self.path,
            "line": self.line,
            "commit": self.commit,
            "detector": self.detector,
            "preview": self.preview,
            "fingerprint": self.fingerprint,
            "allowed_reason": self.allowed_reason,
        }


@dataclass
class AuditResult:
    """What one audit run scanned and found; `exit_code` is 0 clean, 1 findings."""

    root: Path
    started_at: datetime
    mode: str
    files_scanned: int = 0
    commits_scanned: int = 0
    history_depth: int = 0
    detectors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    allowed: list[Finding] = field(default_factory=list)
    env_checks: list[EnvCheck] = field(default_factory=list)
    unused_allowlist: list[AllowlistEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def env_failures(self) -> list[EnvCheck]:
        """The `.env` policy checks that failed."""
        return [check for check in self.env_checks if not check.ok]

    @property
    def clean(self) -> bool:
        """No unallowed finding and no `.env` policy failure."""
        return not self.findings and not self.env_failures

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 otherwise."""
        return 0 if self.clean else 1

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form printed by `--json`."""
        return {
            "verdict": "pass" if self.clean else "fail",
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "mode": self.mode,
            "files_scanned": self.files_scanned,
            "commits_scanned": self.commits_scanned,
            "history_depth": self.history_depth,
            "detectors": self.detectors,
            "findings": [finding.as_dict() for finding in self.findings],
            "allowed": [finding.as_dict() for finding in self.allowed],
            "env_checks": [asdict(check) for check in self.env_checks],
            "unused_allowlist": [asdict(entry) for entry in self.unused_allowlist],
            "notes": self.notes,
        }


def load_allowlist(path: Path) -> list[AllowlistEntry]:
    """Entries of an allowlist file; each needs path, detector, fingerprint (12+ hex), reason."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"allowlist {path} is unreadable or not json", variable="--allowlist"
        ) from exc
    raw_entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(raw_entries, list):
        raise ConfigError(f"allowlist {path} has no 'entries' list", variable="--allowlist")
    entries: list[AllowlistEntry] = []
    for index, raw in enumerate(raw_entries):
        values = {key: raw.get(key) if isinstance(raw, dict) else None for key in
                  ("path", "detector", "fingerprint", "reason")}  # fmt: skip
        missing = [
            key for key, value in values.items() if not isinstance(value, str) or not value.strip()
        ]
        if missing:
            raise ConfigError(
                f"allowlist {path} entry {index} lacks {', '.join(missing)}", variable="--allowlist"
            )
        entry = AllowlistEntry(**{key: str(value).strip() for key, value in values.items()})
        if len(entry.fingerprint) < 12 or any(
            c not in "0123456789abcdef" for c in entry.fingerprint.lower()
        ):
            raise ConfigError(
                f"allowlist {path} entry {index} fingerprint must be 12+ hex characters",
                variable="--allowlist",
            )
        entries.append(entry)
    return entries


def _findings(kind: str, path: str, hits: list[Hit], commit: str | None = None) -> list[Finding]:
    return [
        Finding(kind, path, hit.line_number, hit.detector, redact(hit.secret),
                fingerprint(hit.secret), commit)
        for hit in hits
    ]  # fmt: skip


def _relative(root: Path, path: Path) -> str:
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return absolute.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def run_audit(
    root: Path,
    *,
    history_depth: int,
    files: list[Path] | None,
    allowlist: Path | None,
) -> AuditResult:
    """Scan `files` (pre-commit mode, no history) or the whole tree plus history under `root`."""
    root = root.resolve()
    in_git = git_root(root) is not None
    result = AuditResult(root, datetime.now(UTC), "files" if files is not None else "tree")
    if allowlist is not None and not allowlist.is_file():
        raise ConfigError(f"allowlist {allowlist} does not exist", variable="--allowlist")
    allowlist_path = allowlist if allowlist is not None else root / DEFAULT_ALLOWLIST
    entries = load_allowlist(allowlist_path) if allowlist_path.is_file() else []
    if not in_git:
        result.notes.append("not a git repository: walked every file, no history, no ignore check")

    # Verification (network calls to vendors) stays off: no verification filter configured.
    with transient_settings({"plugins_used": [], "filters_used": []}):
        plugins = build_plugins()
        result.detectors = [detector_id(plugin) for plugin in plugins]
        found = _scan_tree(root, result, plugins, files, in_git, allowlist_path)
        if files is None and in_git:
            result.history_depth = history_depth
            result.commits_scanned, hunks = iter_added_hunks(root, history_depth)
            for hunk in hunks:
                hits = scan_lines(hunk.path, hunk.lines, plugins, line_numbers=hunk.line_numbers)
                found += _findings("history", hunk.path, hits, hunk.commit)

    used: set[AllowlistEntry] = set()
    for finding in found:
        entry = next((e for e in entries if e.matches(finding)), None)
        if entry is None:
            result.findings.append(finding)
        else:
            used.add(entry)
            result.allowed.append(replace(finding, allowed_reason=entry.reason))
    result.unused_allowlist = [entry for entry in entries if entry not in used]
    log.info(
        "audit.finished",
        mode=result.mode,
        files=result.files_scanned,
        commits=result.commits_scanned,
        findings=len(result.findings),
        allowed=len(result.allowed),
        env_failures=len(result.env_failures),
    )
    return result


def _scan_tree(
    root: Path,
    result: AuditResult,
    plugins: list[BasePlugin],
    files: list[Path] | None,
    in_git: bool,
    allowlist_path: Path,
) -> list[Finding]:
    tracked = tracked_files(root) if in_git else set()
    if files is not None:
        candidates = {_relative(root, path) for path in files}
        ignored = {p for p in candidates if in_git and p not in tracked and is_ignored(root, p)}
    else:
        candidates = set(list_worktree_files(root, in_git))
        # .env* files git does not list (with --others --exclude-standard) are ignored ones.
        ignored = {p for p in list_env_files(root) if p not in candidates} if in_git else set()
        candidates |= ignored
    skip = allowlist_path.resolve()
    found: list[Finding] = []
    env_files: dict[str, list[str]] = {}
    for rel in sorted(candidates):
        path = root / rel
        lines = read_lines(path) if path.resolve() != skip else None
        if lines is None:
            continue
        result.files_scanned += 1
        kind = "local-secret" if rel in ignored else "secret"
        found += _findings(kind, rel, scan_lines(rel, lines, plugins))
        if is_env_file(rel):
            env_files[rel] = lines
    if files is None and in_git:
        result.env_checks.append(root_env_ignore_check(root))
    for rel, lines in env_files.items():
        result.env_checks += env_file_checks(root, rel, lines, tracked, in_git=in_git)
    return found
