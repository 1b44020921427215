"""What the secret audit reads: files, their git status, the `.env` policy, and history.

Files are git's view of the tree (`ls-files --cached --others --exclude-standard`) plus
every `.env*` file on disk, ignored or not. The `.env` policy: a `.env*` file holds no
sensitive key with a real value (templates like `.env.example` included), and every
non-template `.env*` file is git-ignored and untracked.

History is read with `git log -p --no-color --unified=0 -n N`, keeping only added lines
with their commit, path and new line number, so a secret that a later commit removed is
still seen. No trufflehog: the same detectors run over these lines as over the tree.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import structlog

from kb_mcp.ops.audit.detectors import env_sensitive_values

__all__ = [
    "MAX_FILE_BYTES",
    "SKIPPED_DIRS",
    "AddedHunk",
    "EnvCheck",
    "env_file_checks",
    "git_root",
    "is_env_file",
    "is_ignored",
    "is_scannable",
    "iter_added_hunks",
    "list_env_files",
    "list_worktree_files",
    "read_lines",
    "root_env_ignore_check",
    "tracked_files",
]

log = structlog.get_logger(__name__)

MAX_FILE_BYTES = 1024 * 1024
SKIPPED_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
     ".pytest_cache", ".hypothesis", ".terraform", ".tox", "site-packages"}
)  # fmt: skip
_SUFFIXES = frozenset(
    {".py", ".pyi", ".sh", ".bash", ".zsh", ".json", ".yaml", ".yml", ".toml", ".tf",
     ".tfvars", ".tftpl", ".hcl", ".md", ".rst", ".txt", ".ini", ".cfg", ".conf", ".sql",
     ".pem", ".key", ".properties", ".j2", ".tpl"}
)  # fmt: skip
_LOCK_FILES = frozenset(
    {"poetry.lock", "uv.lock", "Pipfile.lock", "package-lock.json", "yarn.lock",
     "pnpm-lock.yaml", ".terraform.lock.hcl", "Cargo.lock", "go.sum"}
)  # fmt: skip
_TEMPLATE_MARKERS = (".example", ".sample", ".template", ".dist", ".defaults")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_COMMIT_MARK = "\x00commit "


@dataclass(frozen=True)
class EnvCheck:
    """One `.env` policy check of one file; `detail` names keys, never values."""

    path: str
    check: str
    ok: bool
    detail: str


@dataclass
class AddedHunk:
    """Consecutive lines one commit added to one path, numbered as in that commit."""

    commit: str
    path: str
    start: int
    lines: list[str] = field(default_factory=list)

    @property
    def line_numbers(self) -> list[int]:
        """With `--unified=0` a hunk's added lines are consecutive from its `+start`."""
        return list(range(self.start, self.start + len(self.lines)))


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed git argv, no shell
        ["git", "-C", str(root), "-c", "core.quotePath=false", *args],  # noqa: S607 - git on PATH
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=check,
    )


def git_root(path: Path) -> Path | None:
    """The top level of the git work tree holding `path`, or None outside git."""
    try:
        done = _git(path, "rev-parse", "--show-toplevel", check=False)
    except FileNotFoundError:  # git itself is not installed
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def is_env_file(path: str) -> bool:
    """`.env`, `.env.local`, `.env.example`, `prod.env`: files that hold environment values."""
    name = PurePosixPath(path).name
    return name.startswith(".env") or name.endswith(".env")


def is_scannable(path: str) -> bool:
    """Source, config, infrastructure, Docker, compose and Markdown files, and `.env*`."""
    posix = PurePosixPath(path)
    name = posix.name
    if name in _LOCK_FILES or any(part in SKIPPED_DIRS for part in posix.parts[:-1]):
        return False
    return (
        is_env_file(path)
        or posix.suffix.lower() in _SUFFIXES
        or name.startswith(("Dockerfile", "Containerfile", "docker-compose", "compose."))
        or name.endswith(".dockerfile")
        or name in {"Makefile", "Procfile"}
    )


def tracked_files(root: Path) -> set[str]:
    """Paths in the index (tracked or staged), relative to the root."""
    return {p for p in _git(root, "ls-files", "--cached", "-z").stdout.split("\0") if p}


def list_worktree_files(root: Path, in_git: bool) -> list[str]:
    """Candidate files: git's view (tracked plus untracked, minus ignored) or a plain walk."""
    if in_git:
        listed = _git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
        paths = {p for p in listed.stdout.split("\0") if p}
    else:
        paths = set(_walk(root))
    return sorted(p for p in paths if is_scannable(p) or _has_shebang(root / p))


def list_env_files(root: Path) -> list[str]:
    """Every `.env*` file under the root, ignored or not (ignored ones hide real secrets)."""
    return sorted(p for p in _walk(root) if is_env_file(p))


def _walk(root: Path) -> Iterator[str]:
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        for name in files:
            yield (Path(current) / name).relative_to(root).as_posix()


def _has_shebang(path: Path) -> bool:
    if path.suffix or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def is_ignored(root: Path, path: str) -> bool:
    """Whether git's ignore rules cover `path` (it need not exist, nor be untracked)."""
    done = _git(root, "check-ignore", "-q", "--no-index", "--", path, check=False)
    return done.returncode == 0


def read_lines(path: Path) -> list[str] | None:
    """Text lines of a file, or None for missing, oversized or binary files."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            return None
        return data.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        log.debug("audit.file_skipped", path=str(path))
        return None


def root_env_ignore_check(root: Path) -> EnvCheck:
    """`.env` at the root must be git-ignored, whether or not it exists yet."""
    ignored = is_ignored(root, ".env")
    detail = "covered by .gitignore" if ignored else "add .env to .gitignore"
    return EnvCheck(".env", "git-ignored", ignored, detail)


def env_file_checks(
    root: Path, rel: str, lines: list[str], tracked: set[str], *, in_git: bool
) -> list[EnvCheck]:
    """No sensitive key holds a value; a non-template file is also ignored and untracked."""
    bad = env_sensitive_values(lines)
    detail = ", ".join(f"{key} (line {n})" for n, key in bad) or "no sensitive value"
    checks = [EnvCheck(rel, "sensitive-values", not bad, detail)]
    if in_git and not any(marker in PurePosixPath(rel).name for marker in _TEMPLATE_MARKERS):
        if rel in tracked:
            checks.append(EnvCheck(rel, "git-ignored", False, "tracked by git: git rm --cached"))
        else:
            ignored = is_ignored(root, rel)
            detail = "covered by .gitignore" if ignored else "not git-ignored"
            checks.append(EnvCheck(rel, "git-ignored", ignored, detail))
    return checks


def _has_commits(root: Path) -> bool:
    return _git(root, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode == 0


def iter_added_hunks(root: Path, depth: int) -> tuple[int, list[AddedHunk]]:
    """(commits read, added-line hunks of scannable paths) over the last `depth` commits."""
    if depth <= 0 or not _has_commits(root):
        return 0, []
    log = _git(
        root,
        "log",
        "-p",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        "--unified=0",
        f"-n{depth}",
        "--format=%x00commit %H",
    ).stdout
    commits = 0
    hunks: list[AddedHunk] = []
    commit = path = ""
    current: AddedHunk | None = None
    in_header = False
    for raw in log.split("\n"):
        if raw.startswith(_COMMIT_MARK):
            commits += 1
            commit, path, current, in_header = raw[len(_COMMIT_MARK) :].strip(), "", None, False
        elif raw.startswith("diff --git "):
            path, current, in_header = "", None, True
        elif in_header and raw.startswith("+++ "):
            target = raw[4:].strip().strip('"')
            path = target[2:] if target.startswith("b/") else ""
        elif raw.startswith("@@"):
            in_header = False
            match = _HUNK.match(raw)
            current = None
            if match is not None and path and _history_scannable(path):
                current = AddedHunk(commit, path, int(match.group(1)))
                hunks.append(current)
        elif current is not None and raw.startswith("+"):
            current.lines.append(raw[1:])
    return commits, [hunk for hunk in hunks if hunk.lines]


def _history_scannable(path: str) -> bool:
    # Extensionless files (scripts) cannot be sniffed for a shebang in a diff: scan them.
    return is_scannable(path) or (
        PurePosixPath(path).suffix == ""
        and not any(part in SKIPPED_DIRS for part in PurePosixPath(path).parts)
    )
