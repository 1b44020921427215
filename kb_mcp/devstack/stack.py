"""`kb-mcp dev`: the whole stack on one machine that has nothing but Python.

In order, each stopped in reverse on the way out:

1. a lock on the data folder (one `kb-mcp dev` per folder; a server left running by a
   crashed earlier run is stopped, since nobody else can own it);
2. moto's Secrets Manager on 127.0.0.1 (in memory: seeded afresh on every start);
3. the local OpenAI-compatible embeddings endpoint, accepting the keys held by the live
   versions of the OpenAI secret in that moto (a generated one at first);
4. PostgreSQL + pgvector (from a wheel) with its data in ``<data>/postgres``: database ``kb`` owned
   by the group ``kb_owner``, login roles ``kb_app`` and ``kb_app_clone`` (AWS
   multi-user rotation naming) with passwords generated on every start;
5. the secrets seeded through `kb_mcp.ops.seed` (the key, ``kb_app``'s credentials and
   the superuser as the master secret that rotation uses to alter roles);
6. the production runtime, in this process, through `kb_mcp.runtime.serve.serve` (its
   `on_started` handshake gives the bound port once it accepts connections) with
   `Settings` loaded the normal way from environment variables set here;
7. with ``--rotate-every``, both secrets rotated by the ops tooling's four steps.

SIGINT/SIGTERM stop the server (its own handlers), then everything above. The runtime
is not told it is in a dev stack: only the environment says where things are.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import SecretStr

from kb_mcp.config import Settings, load_settings
from kb_mcp.devstack.banner import StackInfo, print_banner
from kb_mcp.devstack.local_openai import AcceptedKeys, KeysFromSecrets, LocalOpenAIServer
from kb_mcp.devstack.moto_server import MotoSecretsServer
from kb_mcp.devstack.postgres import DataVersionError, PostgresCluster, PostgresClusterError
from kb_mcp.devstack.rotation import rotate_periodically
from kb_mcp.errors import EXIT_OK, EXIT_STARTUP_FAILURE, KbMcpError, report_startup_failure
from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.local_stack import STACK_ENVIRONMENT, STACK_FILE
from kb_mcp.ops.rotation.openai_key import generate_openai_key
from kb_mcp.ops.rotation.postgres import default_master_secret_name, other_username
from kb_mcp.ops.seed import seed_secrets
from kb_mcp.runtime.handshake import write_ready_line

__all__ = ["APP_USERS", "DATABASE", "DevOptions", "DevStackError", "run_dev"]

log = structlog.get_logger(__name__)

DATABASE = "kb"
OWNER_GROUP = "kb_owner"
APP_USERS = ("kb_app", other_username("kb_app"))
PG_FOLDER = "postgres"
LOCK_FILE = "dev.lock"
_DEFAULT_TTL_S = 30.0
_DEFAULT_DRAIN_TIMEOUT_S = "10"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Never let the developer's own AWS identity, profile or fallback values reach the stack.
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "OPENAI_API_KEY",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
)


class DevStackError(RuntimeError):
    """The local stack could not start (folder in use, missing permissions...)."""


@dataclass(frozen=True, slots=True)
class DevOptions:
    """The command line of `kb-mcp dev`."""

    data_dir: Path = Path(".kb-mcp")
    host: str = "127.0.0.1"
    port: int = 8080
    rotate_every_s: float | None = None
    reset: bool = False
    ready_fd: int | None = None
    """Gets one JSON line once the stack serves (`kb_mcp.runtime.handshake`)."""


def run_dev(options: DevOptions) -> int:
    """Run the stack until SIGINT/SIGTERM; the exit code (0 on a clean stop)."""
    try:
        return asyncio.run(_main(options))
    except (DevStackError, PostgresClusterError, KbMcpError) as exc:
        log.error("devstack.start_failed", error=type(exc).__name__, detail=str(exc))
        sys.stderr.write(f"kb-mcp dev: {exc}\n")
        hint = getattr(exc, "hint", "")
        if hint:
            sys.stderr.write(f"kb-mcp dev: check: {hint}\n")
        return EXIT_STARTUP_FAILURE


# ------------------------------------------------------------------ environment


def _cache_ttl_s(options: DevOptions) -> float:
    """30 s, or under half the rotation period so each rotation is picked up before the next."""
    if options.rotate_every_s is None:
        return _DEFAULT_TTL_S
    return max(0.5, min(_DEFAULT_TTL_S, options.rotate_every_s / 2))


def _set_base_environment(options: DevOptions) -> None:
    """What does not depend on the local servers' ports."""
    for name in _CLEARED:
        os.environ.pop(name, None)
    os.environ["KB_MCP_ENV"] = "development"
    os.environ.setdefault("SECRETS_CACHE_TTL_SECONDS", f"{_cache_ttl_s(options):g}")
    os.environ.setdefault("KB_MCP_DRAIN_TIMEOUT_S", _DEFAULT_DRAIN_TIMEOUT_S)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
    # moto accepts any credentials; these exist only for this run.
    os.environ["AWS_ACCESS_KEY_ID"] = "kbmcpdev" + secrets.token_hex(6)
    fake_secret = "kbmcpdev-" + secrets.token_urlsafe(24)
    secret_registry().register(fake_secret)
    os.environ["AWS_SECRET_ACCESS_KEY"] = fake_secret
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


def _set_service_environment(moto: MotoSecretsServer, embeddings: LocalOpenAIServer) -> None:
    os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url
    os.environ["OPENAI_BASE_URL"] = embeddings.base_url


# ------------------------------------------------------------------ data folder


def _prepare_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the postgres system user must traverse it
            folder.chmod(folder.stat().st_mode | 0o011)
    except OSError as exc:
        raise DevStackError(f"cannot use data folder {folder}: {exc.strerror}") from exc


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the data folder; the kernel drops it if we die."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise DevStackError(
                f"another kb-mcp dev (pid {owner}) is using {folder}; stop it, or choose "
                "another --data-dir"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


def _credentials(user: str, password: str, cluster: PostgresCluster, database: str) -> SecretStr:
    return SecretStr(
        json.dumps(
            {
                "username": user,
                "password": password,
                "host": cluster.host,
                "port": cluster.port,
                "database": database,
            }
        )
    )


async def _prepare_database(cluster: PostgresCluster) -> dict[str, str]:
    """Create (or reuse) the database and roles; new login passwords on every start."""
    await cluster.create_group(OWNER_GROUP)
    await cluster.create_database(DATABASE, owner=OWNER_GROUP)
    passwords: dict[str, str] = {}
    for user in APP_USERS:
        passwords[user] = secrets.token_urlsafe(32)
        secret_registry().register(passwords[user])
        await cluster.create_role(user, passwords[user], member_of=OWNER_GROUP)
    await cluster.grant_all(DATABASE, OWNER_GROUP)
    return passwords


# ------------------------------------------------------------------ signals


def _trap_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Before and after `serve` (which installs its own), a signal only asks to stop."""

    def on_signal(signame: str) -> None:
        log.info("devstack.stop_requested", signal=signame)
        stop.set()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig.name)


# ------------------------------------------------------------------ main


async def _main(options: DevOptions) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _trap_stop_signals(loop, stop)
    try:
        with contextlib.ExitStack() as cleanup:
            return await _run(options, stop, cleanup)
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def _run(options: DevOptions, stop: asyncio.Event, cleanup: contextlib.ExitStack) -> int:
    _set_base_environment(options)
    settings = load_settings()
    configure_logging(json_lines=settings.json_logs, level=settings.log_level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    folder = options.data_dir.expanduser().absolute()
    log.info("devstack.starting", data_dir=str(folder))

    _prepare_folder(folder)
    cleanup.enter_context(_folder_lock(folder))
    cluster = PostgresCluster(folder / PG_FOLDER, durable=True)
    await asyncio.to_thread(cluster.stop_stale_server)
    if options.reset and cluster.data_dir.exists():
        await asyncio.to_thread(shutil.rmtree, cluster.data_dir)
        log.warning("devstack.reset", removed=str(cluster.data_dir))

    moto = MotoSecretsServer()
    moto.start()
    cleanup.callback(moto.stop)
    first_key = generate_openai_key().get_secret_value()
    openai_secret = load_settings().openai_secret_name
    loader = KeysFromSecrets(
        [openai_secret], region=os.environ["AWS_REGION"], endpoint_url=moto.endpoint_url
    )
    embeddings = LocalOpenAIServer(AcceptedKeys(loader=loader))
    embeddings.start()
    cleanup.callback(embeddings.stop)
    try:
        await asyncio.to_thread(cluster.start)
    except DataVersionError as exc:
        raise DevStackError(f"{exc} (kb-mcp dev --reset deletes it)") from exc
    cleanup.callback(cluster.stop)
    if stop.is_set():
        return EXIT_OK

    passwords = await _prepare_database(cluster)
    secret_registry().register(cluster.superuser_password)
    _set_service_environment(moto, embeddings)
    settings = load_settings()
    await seed_secrets(
        settings,
        openai_key=SecretStr(first_key),
        postgres_json=_credentials(APP_USERS[0], passwords[APP_USERS[0]], cluster, DATABASE),
        postgres_master_json=_credentials(
            cluster.superuser, cluster.superuser_password, cluster, "postgres"
        ),
    )
    if stop.is_set():
        return EXIT_OK
    info = StackInfo(
        url="",
        data_dir=folder,
        postgres_port=cluster.port,
        postgres_version=cluster.major_version,
        aws_endpoint_url=moto.endpoint_url,
        aws_region=settings.aws_region,
        openai_base_url=embeddings.base_url,
        secret_names=(
            settings.openai_secret_name,
            settings.postgres_secret_name,
            default_master_secret_name(settings),
        ),
        rotate_every_s=options.rotate_every_s,
        cache_ttl_s=settings.cache_ttl_s,
        pid=os.getpid(),
    )
    return await _serve(settings, options, info, stop)


async def _serve(
    settings: Settings, options: DevOptions, info: StackInfo, stop: asyncio.Event
) -> int:
    """The production runtime, plus the banner and the rotation loop beside it."""
    from kb_mcp.runtime.serve import ServerStarted, serve

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    code = EXIT_STARTUP_FAILURE
    try:
        async with asyncio.TaskGroup() as tasks:
            beside: list[asyncio.Task[None]] = []

            def on_started(started: ServerStarted) -> None:
                ready = dataclasses.replace(info, url=_display_url(options.host, started.port))
                task = _when_ready(ready, started.port, settings, done, options.ready_fd)
                beside.append(tasks.create_task(task))

            try:
                code = await serve(
                    settings,
                    transport="http",
                    host=options.host,
                    port=options.port,
                    on_started=on_started,
                )
            except KbMcpError as exc:
                report_startup_failure(exc)
            finally:
                done.set()
                for task in beside:
                    task.cancel()  # do not wait for a rotation in progress
                _trap_stop_signals(loop, stop)  # serve removed its handlers on the way out
    finally:
        (info.data_dir / STACK_FILE).unlink(missing_ok=True)
    log.info("devstack.stopping", exit_code=code)
    return code


def _write_stack_file(info: StackInfo) -> None:
    """`<data>/stack.json` (0600): where the running stack is, for `kb-mcp drill` and
    `kb-mcp secrets ...` run beside it. Holds only local, per-run emulator credentials.
    `openai_keys: "secret"` says the embeddings endpoint accepts whatever key the OpenAI
    secret holds, so a rotation may generate one."""
    document = {
        "mcp_url": info.url,
        "pid": info.pid,
        "environment": {
            name: os.environ[name] for name in sorted(STACK_ENVIRONMENT) if name in os.environ
        },
        "openai_keys": "secret",
    }
    path = info.data_dir / STACK_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)


def _display_url(host: str, port: int) -> str:
    """The URL a local client uses: wildcard binds are reached through loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/mcp"


async def _when_ready(
    ready: StackInfo,
    port: int,
    settings: Settings,
    done: asyncio.Event,
    ready_fd: int | None,
) -> None:
    """Once the server accepts connections: stack file, banner, rotations on schedule."""
    _write_stack_file(ready)
    print_banner(ready)
    log.info("devstack.ready", url=ready.url, data_dir=str(ready.data_dir))
    if ready_fd is not None:
        document = {"port": port, "url": ready.url, "data_dir": str(ready.data_dir)}
        write_ready_line(ready_fd, document)
    if ready.rotate_every_s:
        await rotate_periodically(settings, ready.rotate_every_s, done)
