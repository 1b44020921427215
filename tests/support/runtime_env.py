"""A complete environment for runtime tests: secrets in moto, a database with two login
roles, and the fake OpenAI endpoint; helpers to rotate each secret the way operators do."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import aioboto3

from kb_mcp.config import Settings, load_settings
from kb_mcp.devstack.postgres import PostgresCluster
from tests.plugins.servers import AppDatabase
from tests.support import pg_roles
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.fakes import fake_openai_key, fake_password, postgres_secret_json
from tests.support.processes import base_env

__all__ = ["RuntimeEnv", "open_runtime_env", "wait_until"]

Role = Literal["a", "b"]


async def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll `predicate` every 10 ms until true; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class RuntimeEnv:
    """Secrets, database and embeddings endpoint of one test, with rotation helpers."""

    endpoint_url: str
    pg: PostgresCluster
    app: AppDatabase
    openai: FakeOpenAIServer
    client: Any
    openai_key: str
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    active_role: Role = "a"
    openai_secret: str = "kb-mcp/prod/openai-api-key"
    postgres_secret: str = "kb-mcp/prod/postgres-credentials"
    keys: list[str] = field(default_factory=list, repr=False)

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "env": "production",
            "aws_endpoint_url": self.endpoint_url,
            "aws_region": "us-east-1",
            "openai_base_url": self.openai.base_url,
            "embedding_dimensions": 64,
            "cache_ttl_s": 300.0,
            "db_pool_min_size": 1,
            "db_pool_max_size": 4,
            "drain_timeout_s": 10.0,
            "secrets_retry_budget_s": 1.0,
        }
        base.update(overrides)
        return load_settings(**base)

    def process_env(self, *, endpoint_url: str | None = None, **extra: str) -> dict[str, str]:
        """Environment for a `kb-mcp serve` child pointed at this test's servers."""
        return base_env(
            KB_MCP_ENV="production",
            AWS_ENDPOINT_URL=endpoint_url or self.endpoint_url,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="TESTING",
            AWS_SECRET_ACCESS_KEY="testing-" + "x" * 8,
            OPENAI_BASE_URL=self.openai.base_url,
            KB_MCP_EMBEDDING_DIMENSIONS="64",
            KB_MCP_DB_POOL_MIN_SIZE="1",
            KB_MCP_SECRETS_RETRY_BUDGET_S="0.5",
            **extra,
        )

    def role_name(self, role: Role) -> str:
        return self.app.user_a if role == "a" else self.app.user_b

    def postgres_json(self, role: Role, *, password: str | None = None, **changes: Any) -> str:
        data = json.loads(
            postgres_secret_json(
                username=self.role_name(role),
                password=password if password is not None else self.passwords[role],
                host=self.app.host,
                port=self.app.port,
                database=self.app.database,
            )
        )
        data.update(changes)
        return json.dumps(data)

    async def put(self, name: str, value: str, *, stages: list[str] | None = None) -> str:
        kwargs: dict[str, Any] = {"SecretId": name, "SecretString": value}
        if stages is not None:
            kwargs["VersionStages"] = stages
        response = await self.client.put_secret_value(**kwargs)
        return str(response["VersionId"])

    async def current_version(self, name: str) -> str:
        response = await self.client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
        return str(response["VersionId"])

    async def rotate_postgres(self) -> str:
        """Multi-user rotation: re-password the inactive role, point the secret at it."""
        role: Role = "b" if self.active_role == "a" else "a"
        password = fake_password()
        await pg_roles.set_password(self.pg, self.role_name(role), password)
        self.passwords[role] = password
        self.active_role = role
        return await self.put(self.postgres_secret, self.postgres_json(role))

    async def rotate_openai(self) -> tuple[str, str]:
        """A new key, accepted by the endpoint, stored as the new AWSCURRENT version."""
        key = fake_openai_key()
        self.openai.allow_key(key)
        self.keys.append(key)
        version = await self.put(self.openai_secret, key)
        return key, version

    async def move_current(self, name: str, to_version: str) -> None:
        """UpdateSecretVersionStage: AWSCURRENT to `to_version` (rollback or finish)."""
        current = await self.current_version(name)
        await self.client.update_secret_version_stage(
            SecretId=name,
            VersionStage="AWSCURRENT",
            MoveToVersionId=to_version,
            RemoveFromVersionId=current,
        )

    async def connections(self) -> dict[str, int]:
        """Open connections per app role (pg_stat_activity)."""
        return {
            role: await pg_roles.connection_count(
                self.pg, user=self.role_name(role), database=self.app.database
            )
            for role in ("a", "b")
        }


@asynccontextmanager
async def open_runtime_env(
    endpoint_url: str, pg: PostgresCluster, app: AppDatabase, openai: FakeOpenAIServer
) -> AsyncIterator[RuntimeEnv]:
    """Create both secrets (role a, one allowed key) and yield the environment."""
    session = aioboto3.Session()
    async with session.client(
        "secretsmanager", region_name="us-east-1", endpoint_url=endpoint_url
    ) as client:
        key = fake_openai_key()
        openai.allow_key(key)
        env = RuntimeEnv(
            endpoint_url=endpoint_url,
            pg=pg,
            app=app,
            openai=openai,
            client=client,
            openai_key=key,
            passwords={"a": app.password_a, "b": app.password_b},
            keys=[key],
        )
        await client.create_secret(Name=env.openai_secret, SecretString=key)
        await client.create_secret(Name=env.postgres_secret, SecretString=env.postgres_json("a"))
        yield env
