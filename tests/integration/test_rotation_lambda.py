"""The rotation function (Secrets Manager's contract) against moto and a real PostgreSQL:
four steps under one ClientRequestToken, each harmless when retried, the users alternating.

Under MCP load the same steps are run by `bench/bench_rotation_lambda.py`, whose quick run
(tests/integration/test_benchmarks.py) exits 1 on any failed request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aioboto3
import asyncpg
import pytest

from kb_mcp.config import Settings, load_settings
from kb_mcp.devstack.postgres import PostgresCluster
from kb_mcp.errors import RotationError
from kb_mcp.ops.rotation.lambda_handler import EVENT_STEPS, handle, handler
from kb_mcp.ops.rotation.postgres import other_username
from kb_mcp.secrets.schemas import PostgresCredentials
from tests.plugins.servers import AppDatabase
from tests.support import pg_roles
from tests.support.fakes import postgres_secret_json, watch

PG_SECRET = "kb-mcp/prod/postgres-credentials"
MASTER_SECRET = "kb-mcp/prod/postgres-master"


@dataclass
class Env:
    settings: Settings
    client: Any
    app: AppDatabase

    async def stages(self) -> dict[str, list[str]]:
        described = await self.client.describe_secret(SecretId=PG_SECRET)
        return {k: sorted(v) for k, v in described["VersionIdsToStages"].items()}

    async def current(self) -> PostgresCredentials:
        response = await self.client.get_secret_value(SecretId=PG_SECRET, VersionStage="AWSCURRENT")
        watch(response["SecretString"])
        return PostgresCredentials.from_secret_string(response["SecretString"])


@pytest.fixture
async def env(
    aws_env: str,
    pg_cluster: PostgresCluster,
    app_database: AppDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Env]:
    """The PostgreSQL secret (user a) and the master secret in moto."""
    monkeypatch.setenv("KB_MCP_ENV", "production")
    master = postgres_secret_json(
        username=pg_cluster.superuser,
        password=pg_cluster.superuser_password,
        host=pg_cluster.host,
        port=pg_cluster.port,
        database="postgres",
    )
    async with aioboto3.Session().client(
        "secretsmanager", region_name="us-east-1", endpoint_url=aws_env
    ) as client:
        await client.create_secret(Name=PG_SECRET, SecretString=app_database.secret_json("a"))
        await client.create_secret(Name=MASTER_SECRET, SecretString=master)
        try:
            yield Env(load_settings(secrets_retry_budget_s=1.0), client, app_database)
        finally:
            await pg_roles.drop_role(pg_cluster, other_username(app_database.user_a))


def _event(token: str, step: str) -> dict[str, str]:
    return {"SecretId": PG_SECRET, "ClientRequestToken": token, "Step": step}


async def _logs_in(creds: PostgresCredentials) -> bool:
    conn = await asyncpg.connect(**creds.connect_kwargs())
    try:
        return bool(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


def _owner(stages: dict[str, list[str]], stage: str) -> str | None:
    return next((v for v, labels in stages.items() if stage in labels), None)


async def test_four_steps_under_one_token_rotate_and_every_retry_is_harmless(env: Env) -> None:
    """Each step twice (Secrets Manager retries): the token becomes AWSCURRENT, the clone user
    logs in, the old one still does; a second rotation brings the base user back."""
    first = _owner(await env.stages(), "AWSCURRENT")
    original = await env.current()
    token = str(uuid.uuid4())
    for step in EVENT_STEPS:
        await handle(env.settings, _event(token, step))
        await handle(env.settings, _event(token, step))
        stages = await env.stages()
        if step != "finishSecret":
            assert _owner(stages, "AWSCURRENT") == first, step
            assert _owner(stages, "AWSPENDING") == token, step
    assert stages[token] == ["AWSCURRENT"]
    assert first is not None
    assert stages[first] == ["AWSPREVIOUS"]
    clone = await env.current()
    assert clone.username == other_username(env.app.user_a)
    assert await _logs_in(clone)
    assert await _logs_in(original)  # the overlap: the previous user keeps working

    second = str(uuid.uuid4())
    for step in EVENT_STEPS:
        await handle(env.settings, _event(second, step))
    back = await env.current()
    assert back.username == env.app.user_a
    assert back.password.get_secret_value() != original.password.get_secret_value()
    assert await _logs_in(back)
    assert _owner(await env.stages(), "AWSPREVIOUS") == token


async def test_a_token_that_is_not_pending_is_refused_and_nothing_moves(env: Env) -> None:
    """setSecret/testSecret/finishSecret with a token that is not AWSPENDING raise; AWSCURRENT
    stays; an unknown step or a missing field is refused before any call."""
    before = await env.stages()
    for step in ("setSecret", "testSecret", "finishSecret"):
        with pytest.raises(RotationError, match="is not AWSPENDING"):
            await handle(env.settings, _event(str(uuid.uuid4()), step))
    assert await env.stages() == before
    with pytest.raises(ValueError, match="unknown step"):
        await handle(env.settings, _event("t", "rotateEverything"))
    with pytest.raises(ValueError, match="no ClientRequestToken"):
        await handle(env.settings, {"SecretId": PG_SECRET, "Step": "createSecret"})


async def test_create_reuses_the_value_already_stored_under_the_token(env: Env) -> None:
    """A createSecret retried after PutSecretValue succeeded keeps the stored value (same
    token, same password): the role set later is the one the secret names."""
    token = str(uuid.uuid4())
    await handle(env.settings, _event(token, "createSecret"))
    stored = await env.client.get_secret_value(
        SecretId=PG_SECRET, VersionId=token, VersionStage="AWSPENDING"
    )
    watch(stored["SecretString"])
    outcome = await handle(env.settings, _event(token, "createSecret"))
    assert "already holds the pending value" in outcome.detail
    again = await env.client.get_secret_value(
        SecretId=PG_SECRET, VersionId=token, VersionStage="AWSPENDING"
    )
    assert again["SecretString"] == stored["SecretString"]
    assert stored["SecretString"] not in outcome.detail


async def test_the_lambda_entry_point_runs_a_step_from_its_environment(env: Env) -> None:
    """`handler(event, context)` (what Lambda calls) reads its settings from the environment
    and runs the step on its own event loop."""
    token = str(uuid.uuid4())
    await asyncio.to_thread(handler, _event(token, "createSecret"), None)
    assert _owner(await env.stages(), "AWSPENDING") == token
