"""The local stack behind the benchmarks, and how a benchmark reports its figures.

`open_stack()` starts the three real servers on 127.0.0.1: PostgreSQL 16 + pgvector
(fsync off), and moto's Secrets Manager and the fake OpenAI endpoint in a child process
(`python -m bench._stack`, driven over its stdin), so that the runtime being measured does
not share a GIL with the servers it calls. It creates a database owned by a group role
with two login roles (AWS multi-user rotation), stores both secrets, and yields a
`BenchStack` whose helpers rotate each secret the way the ops tooling does. Every
credential is generated at run time.

`SwapRecorder` timestamps rotations (an observer: `detected`, `swapped`,
`openai.client_swapped`) at the moment they are logged. The reporting helpers are in
`bench/__init__.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
import uvicorn
from secretswap import HotSwapEvent

from kb_mcp.config import Settings, load_settings
from kb_mcp.devstack.local_openai import AcceptedKeys, build_app
from kb_mcp.devstack.moto_server import MotoSecretsServer
from kb_mcp.devstack.postgres import PostgresCluster, PostgresClusterError
from kb_mcp.observability.logging import configure_logging
from tests.support import pg_roles

__all__ = [
    "BenchDatabase",
    "BenchStack",
    "Swap",
    "SwapRecorder",
    "open_database",
    "open_stack",
]

REGION = "us-east-1"
_CHILD_TIMEOUT_S = 30.0
APP = "kbbench"


def fake_key() -> str:
    """An API key of OpenAI's shape, random per run."""
    return "sk-" + "bench-" + secrets.token_hex(24)


def fake_password() -> str:
    return "pw-" + secrets.token_urlsafe(24)


def _fake_aws_environment(endpoint_url: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "BENCHKEY" + secrets.token_hex(6).upper(),
        "AWS_SECRET_ACCESS_KEY": "bench-" + secrets.token_hex(16),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
    }


@dataclass
class BenchStack:
    """The servers, the database roles and both secrets of one benchmark run."""

    pg: PostgresCluster
    fakes: FakesProcess
    client: Any
    aws_environment: dict[str, str] = field(repr=False)
    passwords: dict[str, str] = field(repr=False)
    keys: list[str] = field(default_factory=list, repr=False)
    active_role: str = f"{APP}_a"
    openai_secret: str = "kb-mcp/prod/openai-api-key"  # noqa: S105 - a name, not a value
    postgres_secret: str = "kb-mcp/prod/postgres-credentials"  # noqa: S105 - a name
    last_put_at: float = 0.0
    """`time.monotonic()` when the last `put` returned (propagation is measured from it)."""

    @property
    def endpoint_url(self) -> str:
        return self.fakes.endpoint_url

    def settings(self, **overrides: Any) -> Settings:
        """Production settings pointing at this stack (overrides win)."""
        base: dict[str, Any] = {
            "env": "production",
            "aws_endpoint_url": self.endpoint_url,
            "aws_region": REGION,
            "openai_base_url": self.fakes.openai_base_url,
            "embedding_dimensions": 64,
            "secrets_retry_budget_s": 1.0,
        }
        base.update(overrides)
        return load_settings(**base)

    def environment(self, **extra: str) -> dict[str, str]:
        """Environment variables for a `kb-mcp` subprocess served by this stack."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KB_MCP_"))}
        env.update(self.aws_environment)
        env.update(
            {
                "KB_MCP_ENV": "production",
                "OPENAI_BASE_URL": self.fakes.openai_base_url,
                "KB_MCP_EMBEDDING_DIMENSIONS": "64",
                "KB_MCP_LOG_FORMAT": "json",
            }
        )
        env.update(extra)
        return env

    def postgres_json(self, role: str) -> str:
        return json.dumps(
            {
                "username": role,
                "password": self.passwords[role],
                "host": self.pg.host,
                "port": self.pg.port,
                "database": APP,
            }
        )

    async def put(self, name: str, value: str) -> str:
        """PutSecretValue: a new AWSCURRENT version; returns its VersionId."""
        response = await self.client.put_secret_value(SecretId=name, SecretString=value)
        self.last_put_at = time.monotonic()
        return str(response["VersionId"])

    async def rotate_postgres(self) -> str:
        """Multi-user rotation: re-password the inactive role, point the secret at it."""
        role = f"{APP}_b" if self.active_role == f"{APP}_a" else f"{APP}_a"
        password = fake_password()
        await pg_roles.set_password(self.pg, role, password)
        self.passwords[role] = password
        self.active_role = role
        return await self.put(self.postgres_secret, self.postgres_json(role))

    async def rotate_openai(self, *, keep: int = 2) -> str:
        """A new key, accepted by the endpoint, stored as AWSCURRENT; the oldest keys die."""
        key = fake_key()
        await self.fakes.command("allow", key)
        self.keys.append(key)
        version = await self.put(self.openai_secret, key)
        for old in self.keys[:-keep]:
            await self.fakes.command("revoke", old)
        return version

    async def connections(self) -> int:
        """Client sessions open on the benchmark database (pg_stat_activity)."""
        return await pg_roles.connection_count(self.pg, database=APP)


async def _make_database(pg: PostgresCluster) -> dict[str, str]:
    group = f"{APP}_owner"
    await pg.create_group(group)
    await pg.create_database(APP, owner=group)
    passwords: dict[str, str] = {}
    for suffix in ("a", "b"):
        role = f"{APP}_{suffix}"
        passwords[role] = fake_password()
        await pg.create_role(role, passwords[role], member_of=group)
    await pg.grant_all(APP, group)
    return passwords


def _private_folder() -> Path:
    base = Path(tempfile.mkdtemp(prefix="kbbench-"))
    base.chmod(0o711)  # as root, the postgres system user must traverse it
    return base


@dataclass
class BenchDatabase:
    """A private PostgreSQL cluster with the benchmark database and its two login roles."""

    pg: PostgresCluster
    passwords: dict[str, str] = field(repr=False)
    name: str = APP

    def connect_kwargs(self, role: str = f"{APP}_a") -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect` / `create_pool` as `role`."""
        return {
            "host": self.pg.host,
            "port": self.pg.port,
            "user": role,
            "password": self.passwords[role],
            "database": self.name,
        }


def _postmaster_pid(pg: PostgresCluster) -> int | None:
    pid_file = pg.data_dir / "postmaster.pid"
    try:
        return int(pid_file.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop_cluster(pg: PostgresCluster) -> None:
    """Stop the cluster; after a crashed backend (pg_ctl then hangs), end it at once."""
    log = pg.data_dir / "kb_mcp_server.log"
    crashed = log.is_file() and "terminated by signal" in log.read_text(errors="replace")
    pid = _postmaster_pid(pg)
    if crashed and pid is not None:
        sys.stderr.write(f"postgres backend crashed: immediate shutdown of postmaster {pid}\n")
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while _postmaster_pid(pg) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    try:
        pg.stop()
    except PostgresClusterError:
        pid = _postmaster_pid(pg)
        if pid is not None:
            sys.stderr.write(f"postgres did not stop: immediate shutdown of postmaster {pid}\n")
            os.kill(pid, signal.SIGQUIT)


@asynccontextmanager
async def open_database(
    *, max_connections: int = 200, durable: bool = False
) -> AsyncIterator[BenchDatabase]:
    """Start PostgreSQL 16 + pgvector (fsync off unless `durable`) with the benchmark database."""
    async with AsyncExitStack() as own:
        base = _private_folder()
        own.callback(shutil.rmtree, base, ignore_errors=True)
        pg = PostgresCluster(base / "data", durable=durable, max_connections=max_connections)
        own.push_async_callback(asyncio.to_thread, _stop_cluster, pg)
        await asyncio.to_thread(pg.start)
        yield BenchDatabase(pg=pg, passwords=await _make_database(pg))


@asynccontextmanager
async def open_stack(
    *, max_connections: int = 200, durable: bool = False
) -> AsyncIterator[BenchStack]:
    """Start PostgreSQL, moto and the fake OpenAI endpoint; store both secrets.

    `durable`: fsync and synchronous commit on (a benchmark that crashes the server and
    counts lost writes needs them; others run faster without)."""
    async with AsyncExitStack() as stack:
        # The child process and the cluster start side by side.
        fakes, db = await asyncio.gather(
            stack.enter_async_context(FakesProcess.start()),
            stack.enter_async_context(
                open_database(max_connections=max_connections, durable=durable)
            ),
        )
        aws_environment = _fake_aws_environment(fakes.endpoint_url)
        os.environ.update(aws_environment)  # this process's AWS clients talk to moto
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)
        client = await stack.enter_async_context(
            aioboto3.Session().client(
                "secretsmanager", region_name=REGION, endpoint_url=fakes.endpoint_url
            )
        )
        bench = BenchStack(
            pg=db.pg,
            fakes=fakes,
            client=client,
            aws_environment=aws_environment,
            passwords=db.passwords,
        )
        key = fake_key()
        await fakes.command("allow", key)
        bench.keys.append(key)
        await client.create_secret(Name=bench.openai_secret, SecretString=key)
        await client.create_secret(
            Name=bench.postgres_secret, SecretString=bench.postgres_json(bench.active_role)
        )
        yield bench


class FakesProcess:
    """moto and the fake OpenAI endpoint in a child process; keys allowed over its stdin."""

    def __init__(self, process: asyncio.subprocess.Process, urls: Mapping[str, str]) -> None:
        self._process = process
        self.endpoint_url = urls["moto"]
        self.openai_base_url = urls["openai"]
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[FakesProcess]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._stack",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), _CHILD_TIMEOUT_S)
            if not line:
                raise RuntimeError("the fake servers process exited before it was ready")
            yield cls(process, json.loads(line))
        finally:
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), _CHILD_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def command(self, verb: str, key: str) -> None:
        """`allow` or `revoke` an API key at the fake OpenAI endpoint; returns once done."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        async with self._lock:
            stdin.write(f"{verb} {key}\n".encode())
            await stdin.drain()
            answer = await asyncio.wait_for(stdout.readline(), _CHILD_TIMEOUT_S)
        if answer.strip() != b"ok":
            raise RuntimeError(f"fake servers process refused {verb}")


class _NotifyingServer(uvicorn.Server):
    """uvicorn that sets `listening` once its sockets are bound."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


async def _serve_fakes() -> None:
    """The child: start both servers, print their URLs, obey stdin until it closes.

    The OpenAI stand-in is served by uvicorn binding through `loop.create_server`, whose
    connections get TCP_NODELAY (a socket made with proto 0 and handed to uvicorn does
    not, which adds a 40 ms delayed-ACK wait to every keep-alive response).
    """
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    state = AcceptedKeys()
    config = uvicorn.Config(
        build_app(state),
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
    )
    server = _NotifyingServer(config)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(server.serve())
        await server.listening.wait()
        port = server.servers[0].sockets[0].getsockname()[1]
        with MotoSecretsServer() as moto:
            urls = {"moto": moto.endpoint_url, "openai": f"http://127.0.0.1:{port}/v1"}
            print(json.dumps(urls), flush=True)
            while line := (await reader.readline()).decode():
                verb, _, key = line.strip().partition(" ")
                if verb == "allow":
                    state.allow(key)
                elif verb == "revoke":
                    state.revoke(key)
                print("ok" if verb in ("allow", "revoke") else "unknown", flush=True)
        server.should_exit = True


# -- swap timestamps ------------------------------------------------------------------


@dataclass(frozen=True)
class Swap:
    """A rotation step: when (`time.monotonic()`), which step, which new version."""

    at: float
    event: str
    version_id: str


SWAPPED = ("swapped",)
DETECTED = "detected"


class SwapRecorder:
    """An observer (`kb_mcp.hotswap.Observer`) that timestamps rotations; logs go to stderr.

    Records `detected` (a refresher saw the new version) and `swapped` (a resource built
    from the new credential is in service). Pass it to `boot_runtime(observers=...)`.
    """

    def __init__(self) -> None:
        self.swaps: list[Swap] = []
        self._changed = asyncio.Event()

    def install(self) -> None:
        """Warnings and errors to stderr; the recorder itself needs no log."""
        configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
        for noisy in ("werkzeug", "moto", "uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    def __call__(self, event: HotSwapEvent) -> None:
        if event.kind in (*SWAPPED, DETECTED):
            self.swaps.append(Swap(event.at, event.kind, event.version_id))
            self._changed.set()

    def times(self, version_id: str, events: Sequence[str] = SWAPPED) -> list[float]:
        return [s.at for s in self.swaps if s.version_id == version_id and s.event in events]

    def swap_times(self) -> list[float]:
        """When each swap happened (any secret, any version)."""
        return [s.at for s in self.swaps if s.event in SWAPPED]

    async def wait_for(
        self,
        version_id: str,
        *,
        count: int = 1,
        timeout_s: float,
        events: Sequence[str] = SWAPPED,
    ) -> list[float]:
        """The times of the first `count` swaps to `version_id`; TimeoutError after timeout_s."""
        async with asyncio.timeout(timeout_s):
            while True:
                self._changed.clear()
                found = self.times(version_id, events)
                if len(found) >= count:
                    return found[:count]
                await self._changed.wait()


if __name__ == "__main__":
    asyncio.run(_serve_fakes())
