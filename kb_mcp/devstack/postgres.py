"""A private PostgreSQL + pgvector cluster, run from a ``pgserver`` wheel's binaries.

The cluster is made with our own ``initdb`` (SCRAM passwords, a generated
superuser password kept in a 0600 file inside the data folder), listens on
127.0.0.1 only, on a free port, with its Unix socket in a short private folder.
``initdb`` and ``postgres`` refuse to run as root: as root, every server
command runs as the ``postgres`` system user (or a ``kbmcp-pg`` system user
created for the purpose) through ``runuser``, and the data folder belongs to it
(binary lookup lives in ``pg_binaries``, SQL quoting in ``kb_mcp.db.sqltext``).

A server left behind by an owner that died is handled at ``start()``: a
``postmaster.pid`` naming a process that is gone is left for PostgreSQL to
replace, one naming a live process that is not a postgres of this folder (a
reused pid after a reboot or in a container) is removed, and a server still
running from the crashed owner is refused unless ``stop_stale_server()`` stopped
it first (the caller must know that no live owner uses the folder). A data folder
made by another major version is refused with a message saying so. A server that
ignores a fast shutdown for a minute gets an immediate one (crash recovery at the
next start replays the WAL, so no committed data is lost).

The SQL helpers (``pg_admin``) open a short superuser connection each. For AWS multi-user
rotation two login roles must share tables; the pattern is::

    await cluster.create_group("app_owner")
    await cluster.create_database("app", owner="app_owner")
    await cluster.create_role("app_a", pw_a, member_of="app_owner")
    await cluster.create_role("app_b", pw_b, member_of="app_owner")

Sessions of a member start as the group (``ALTER ROLE ... SET role``), so
whatever either user creates is owned by the group and both can alter it.
ASCII passwords are sent to the server as SCRAM verifiers, so they never
appear in statements or server logs (others go as escaped literals); ours
never name a password.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import structlog

from kb_mcp.db.sqltext import quote_literal
from kb_mcp.devstack.pg_admin import PostgresAdmin
from kb_mcp.devstack.pg_binaries import (
    PgInstall,
    PostgresClusterError,
    locate_install,
    short_temp_root,
)

__all__ = [
    "DataVersionError",
    "PostgresCluster",
    "PostgresClusterError",
]

logger = structlog.get_logger(__name__)

_PASSWORD_FILE = "kb_mcp_superuser_password"  # noqa: S105 - a file name, not a password
_CONF_FILE = "kb_mcp.conf"
_LOG_FILE = "kb_mcp_server.log"
_PID_FILE = "postmaster.pid"
_SOCKET_PREFIX = "kbpg-"
_PORT_ATTEMPTS = 5
_INITDB_OPTIONS = "-A scram-sha-256 -E UTF8 --locale=C --no-instructions"
_HBA = "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
_PORT_IN_USE = re.compile(r"address already in use|could not create any tcp/ip sockets", re.I)

PreviousServer = Literal["none", "gone", "running", "foreign"]


class DataVersionError(PostgresClusterError):
    """The data folder was made by another major version of PostgreSQL."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_postmaster_of(pid: int, data_dir: Path) -> bool | None:
    """Whether ``pid`` is a postgres server of ``data_dir``; None without /proc to ask."""
    if not Path("/proc/self").is_dir():
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False  # no such process
    program = Path(os.fsdecode(argv[0])).name if argv and argv[0] else ""
    return program in {"postgres", "postmaster"} and os.fsencode(str(data_dir)) in argv


class PostgresCluster(PostgresAdmin):
    """One PostgreSQL server on 127.0.0.1 with its data in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        superuser: str = "kb_admin",
        durable: bool = True,
        max_connections: int = 200,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = "127.0.0.1"
        self.superuser = superuser
        self.durable = durable
        self.max_connections = max_connections
        self._requested_port = port
        self._port = port or 0
        self._password: str | None = None
        self._install: PgInstall | None = None
        self._socket_dir: Path | None = None
        self._running = False

    def __repr__(self) -> str:
        return f"PostgresCluster(data_dir={str(self.data_dir)!r}, port={self._port})"

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        if not self._port:
            raise PostgresClusterError("postgres cluster has no port until it is started")
        return self._port

    @property
    def running(self) -> bool:
        return self._running

    @property
    def superuser_password(self) -> str:
        if self._password is None:
            path = self.data_dir / _PASSWORD_FILE
            if not path.is_file():
                raise PostgresClusterError(f"no superuser password file in {self.data_dir}")
            self._password = path.read_text(encoding="utf-8").strip()
        return self._password

    def start(self) -> None:
        """Create the cluster if ``data_dir`` is not one yet, then start the server."""
        if self._running:
            raise PostgresClusterError("postgres cluster is already running")
        install = self._install = locate_install()
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb(install)
        self._check_version(install)
        previous = self.previous_server()
        if previous == "running":
            raise PostgresClusterError(f"a server is already running on {self.data_dir}")
        if previous == "foreign":
            # The pid was reused by an unrelated process: postgres would refuse to start.
            (self.data_dir / _PID_FILE).unlink(missing_ok=True)
            logger.warning("postgres.stale_pid_file_removed", data_dir=str(self.data_dir))
        self._socket_dir = Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX, dir=short_temp_root()))
        install.give(self._socket_dir)
        try:
            self._start_on_free_port(install)
        except BaseException:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            raise
        self._running = True
        logger.info("postgres.started", data_dir=str(self.data_dir), port=self._port)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are cut) and wait for it."""
        if not self._running or self._install is None:
            return
        detail = self._shut_down(self._install)
        if detail is not None:
            raise PostgresClusterError(
                f"postgres cluster on {self.data_dir} did not stop: {detail}"
            )
        self._running = False  # stopped now, or it had already died
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        logger.info("postgres.stopped", data_dir=str(self.data_dir), port=self._port)

    def previous_server(self) -> PreviousServer:
        """What ``postmaster.pid`` in ``data_dir`` says about a server started earlier.

        ``none``: no pid file; ``gone``: its process is dead (postgres replaces the
        file itself); ``running``: a postgres still serves this folder; ``foreign``:
        the pid now belongs to an unrelated process.
        """
        pid_file = self.data_dir / _PID_FILE
        try:
            first_line = pid_file.read_text(encoding="utf-8").split("\n", 1)[0].strip()
        except FileNotFoundError:
            return "none"
        except OSError as exc:
            raise PostgresClusterError(f"cannot read {pid_file}: {exc.strerror}") from exc
        if not first_line.isdigit():
            return "gone"  # a torn write: postgres rewrites it
        verdict = _is_postmaster_of(int(first_line), self.data_dir)
        if verdict is None:  # no /proc: ask pg_ctl, which trusts any live pid
            install = self._install or locate_install()
            return "running" if self._pg_ctl_ok(install, "status") else "gone"
        if verdict:
            return "running"
        return "foreign" if Path(f"/proc/{first_line}").exists() else "gone"

    def stop_stale_server(self) -> bool:
        """Stop a server that a crashed owner left running on ``data_dir``; True if one was.

        Only call this when no live process owns the folder (``kb-mcp dev`` holds a
        lock on it for that): it stops whatever postgres serves ``data_dir``.
        """
        if self._running or self.previous_server() != "running":
            return False
        install = self._install = self._install or locate_install()
        socket_dir = self._socket_dir_of_pid_file()
        detail = self._shut_down(install)
        if detail is not None:
            raise PostgresClusterError(
                f"could not stop the server left running on {self.data_dir}: {detail}"
            )
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        logger.warning("postgres.stale_server_stopped", data_dir=str(self.data_dir))
        return True

    def _shut_down(self, install: PgInstall) -> str | None:
        """Fast shutdown, then immediate if the server ignores it; None once it is down."""
        detail = ""
        for mode, wait_s in (("fast", 60), ("immediate", 30)):
            argv = [install.tool("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w"]
            result = install.run([*argv, "-t", str(wait_s), "-s", "stop"])
            if result.returncode == 0 or not self._pg_ctl_ok(install, "status"):
                return None
            detail = result.stderr.strip()
            logger.warning("postgres.stop_escalated", data_dir=str(self.data_dir), mode=mode)
        return detail or "pg_ctl stop failed"

    def _check_version(self, install: PgInstall) -> None:
        made_by = (self.data_dir / "PG_VERSION").read_text(encoding="utf-8").strip()
        installed = install.major_version()
        if made_by != installed:
            raise DataVersionError(
                f"data folder {self.data_dir} was made by postgresql {made_by}, but the "
                f"installed server is postgresql {installed}: move the folder away (or dump "
                f"it with postgresql {made_by}) and start from an empty one"
            )

    @property
    def major_version(self) -> str:
        """The major version of the cluster's data folder (``16``); empty before initdb."""
        path = self.data_dir / "PG_VERSION"
        return path.read_text(encoding="utf-8").strip() if path.is_file() else ""

    def _socket_dir_of_pid_file(self) -> Path | None:
        """The old server's private socket folder, when it is one this class made."""
        try:
            lines = (self.data_dir / _PID_FILE).read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        folder = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
        if folder is None or folder.parent != Path(short_temp_root()):
            return None
        return folder if folder.name.startswith(_SOCKET_PREFIX) else None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _initdb(self, install: PgInstall) -> None:
        data_dir = self.data_dir
        if data_dir.exists() and any(data_dir.iterdir()):
            raise PostgresClusterError(f"data folder {data_dir} is not empty and is not a cluster")
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        install.give(data_dir)
        if not install.can_access(data_dir, "-w"):
            raise PostgresClusterError(
                f"system user {install.run_as} cannot reach data folder {data_dir}; "
                "choose a folder whose parents it can traverse"
            )
        password = secrets.token_urlsafe(32)
        with tempfile.TemporaryDirectory(prefix="kbpgpw-") as scratch:
            install.give(Path(scratch))
            pwfile = Path(scratch) / "pw"
            install.write_private(pwfile, password + "\n")
            argv = [install.tool("initdb"), "-D", str(data_dir), "-U", self.superuser]
            argv += [f"--pwfile={pwfile}", *_INITDB_OPTIONS.split()]
            if not self.durable:
                argv.append("--no-sync")
            result = install.run(argv)
        if result.returncode != 0:
            raise PostgresClusterError(
                f"initdb failed for {data_dir}: {result.stderr.strip()[-2000:]}"
            )
        install.write_private(data_dir / "pg_hba.conf", _HBA)
        with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"\ninclude_if_exists = {quote_literal(_CONF_FILE)}\n")
        install.write_private(data_dir / _PASSWORD_FILE, password + "\n")
        self._password = password
        logger.info("postgres.initdb", data_dir=str(data_dir), superuser=self.superuser)

    def _write_conf(self, install: PgInstall, port: int) -> None:
        flag = "on" if self.durable else "off"
        lines = [
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = {quote_literal(str(self._socket_dir))}",
            f"max_connections = {int(self.max_connections)}",
            "password_encryption = 'scram-sha-256'",
            f"fsync = {flag}",
            f"synchronous_commit = {flag}",
            f"full_page_writes = {flag}",
        ]
        install.write_private(self.data_dir / _CONF_FILE, "\n".join(lines) + "\n")

    def _start_on_free_port(self, install: PgInstall) -> None:
        log = self.data_dir / _LOG_FILE
        attempts = 1 if self._requested_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or _free_port()
            self._write_conf(install, port)
            offset = log.stat().st_size if log.exists() else 0
            argv = [install.tool("pg_ctl"), "-D", str(self.data_dir), "-l", str(log)]
            argv += ["-w", "-t", "60", "-s", "start"]
            result = install.run(argv)
            if result.returncode == 0:
                self._port = port
                return
            tail = _read_from(log, offset)
            if not _PORT_IN_USE.search(tail):
                detail = (result.stderr.strip() + " " + tail.strip())[-2000:]
                raise PostgresClusterError(f"postgres did not start on {self.data_dir}: {detail}")
            if attempt == attempts:
                raise PostgresClusterError(f"port {port} on 127.0.0.1 is already in use")
            logger.warning("postgres.port_in_use_retry", port=port, attempt=attempt)

    def _pg_ctl_ok(self, install: PgInstall, action: str) -> bool:
        result = install.run([install.tool("pg_ctl"), "-D", str(self.data_dir), action])
        return result.returncode == 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
