"""Fixtures that start the real local servers: moto, PostgreSQL + pgvector, fake OpenAI.

Registered suite-wide through ``pytest_plugins`` in tests/conftest.py. Every server
binds 127.0.0.1 on a port the OS picked; every credential is generated per run and
handed to the leak guard (``tests.support.fakes.watch``).

For AWS multi-user rotation tests, ``make_app_database`` (or the ``app_database``
fixture) gives a database owned by a group role and two login roles in that group,
so either role can read, write and migrate the same tables.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from kb_mcp.db.sqltext import quote_ident
from kb_mcp.devstack.moto_server import MotoSecretsServer
from kb_mcp.devstack.postgres import PostgresCluster
from tests.support import pg_roles
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.fakes import fake_openai_key, fake_password, postgres_secret_json, watch

__all__ = [
    "AppDatabase",
    "app_database",
    "aws_env",
    "drop_app_database",
    "fake_openai",
    "make_app_database",
    "moto_server",
    "openai_api_key",
    "pg_cluster",
]


@dataclass(frozen=True)
class AppDatabase:
    """A database and the two login roles that take turns in AWS multi-user rotation."""

    host: str
    port: int
    database: str
    group: str
    user_a: str
    user_b: str
    password_a: str = field(repr=False)
    password_b: str = field(repr=False)

    def credentials(self, which: Literal["a", "b"] = "a") -> tuple[str, str]:
        """(username, password) of role ``a`` or ``b``."""
        return (self.user_a, self.password_a) if which == "a" else (self.user_b, self.password_b)

    def secret_json(self, which: Literal["a", "b"] = "a") -> str:
        """The PostgreSQL credentials secret for role ``a`` or ``b``, as AWS stores it."""
        username, password = self.credentials(which)
        return postgres_secret_json(
            username=username,
            password=password,
            host=self.host,
            port=self.port,
            database=self.database,
        )


async def make_app_database(pg_cluster: PostgresCluster, name: str) -> AppDatabase:
    """Create database ``name``, its owning group ``<name>_owner`` and roles ``<name>_a``/``_b``."""
    group = f"{name}_owner"
    await pg_cluster.create_group(group)
    await pg_cluster.create_database(name, owner=group)
    passwords: dict[str, str] = {}
    for suffix in ("a", "b"):
        passwords[suffix] = fake_password()
        await pg_cluster.create_role(f"{name}_{suffix}", passwords[suffix], member_of=group)
    await pg_cluster.grant_all(name, group)
    return AppDatabase(
        host=pg_cluster.host,
        port=pg_cluster.port,
        database=name,
        group=group,
        user_a=f"{name}_a",
        user_b=f"{name}_b",
        password_a=passwords["a"],
        password_b=passwords["b"],
    )


async def drop_app_database(pg_cluster: PostgresCluster, app: AppDatabase) -> None:
    """Drop what ``make_app_database`` made, cutting any session still open."""
    await pg_cluster.execute(f"DROP DATABASE IF EXISTS {quote_ident(app.database)} WITH (FORCE)")
    for role in (app.user_a, app.user_b, app.group):
        await pg_roles.drop_role(pg_cluster, role)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoSecretsServer]:
    """A moto server (Secrets Manager and friends) for the whole session."""
    with MotoSecretsServer() as server:
        yield server


@pytest.fixture
def aws_env(moto_server: MotoSecretsServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """AWS environment pointing at moto with fake credentials; moto is emptied afterwards."""
    secret_key = "test-secret-" + secrets.token_hex(16)
    watch(secret_key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "TESTKEY" + secrets.token_hex(6).upper())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield moto_server.endpoint_url
    finally:
        moto_server.reset()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL + pgvector cluster (fsync off) for the whole session."""
    base = Path(tempfile.mkdtemp(prefix="kbpgt-"))
    base.chmod(0o711)  # as root, the postgres system user must traverse it
    cluster = PostgresCluster(base / "data", durable=False)
    try:
        cluster.start()
        watch(cluster.superuser_password)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def app_database(pg_cluster: PostgresCluster) -> AsyncIterator[AppDatabase]:
    """A fresh database with its group role and two login roles; dropped afterwards."""
    app = await make_app_database(pg_cluster, f"app_{secrets.token_hex(4)}")
    try:
        yield app
    finally:
        await drop_app_database(pg_cluster, app)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A local OpenAI-compatible server with no key allowed yet."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def openai_api_key(fake_openai: FakeOpenAIServer) -> str:
    """A fake API key, generated for this test and allowed on ``fake_openai``."""
    key = fake_openai_key()
    fake_openai.allow_key(key)
    return key
