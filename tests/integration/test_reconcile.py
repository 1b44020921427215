"""`kb-mcp secrets seed --if-missing --reconcile-database`: the database follows the secret.

What compose's seed does on every `up`: after `down`/`up` the emulator is empty and the
seed re-creates the secret from the `.env` values, while the database kept a password a
rotation set; the role is set back to the secret's password, so the app logs in.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aioboto3
import asyncpg
import pytest

from kb_mcp.devstack.postgres import PostgresCluster
from kb_mcp.ops import seed
from tests.plugins.servers import AppDatabase
from tests.support import pg_roles
from tests.support.fakes import fake_password, watch

PG_SECRET = "kb-mcp/dev/postgres-credentials"
MASTER_SECRET = "kb-mcp/dev/postgres-master"


async def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    seed.register(parser.add_subparsers(dest="op", required=True))
    args = parser.parse_args(argv)
    code: int = await asyncio.to_thread(args.handler, args)
    return code


async def _login(app: AppDatabase, password: str) -> int:
    conn = await asyncpg.connect(
        user=app.user_a, password=password, host=app.host, port=app.port, database=app.database
    )
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def test_seed_sets_a_rotated_role_back_to_the_secret(
    aws_env: str,
    pg_cluster: PostgresCluster,
    app_database: AppDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The role's password drifted (a rotation the emulator forgot): the seed re-creates
    the missing secrets from the environment and sets the role to the secret's password;
    a second run changes no secret (--if-missing) and is idempotent."""
    drifted = fake_password()
    watch(drifted)
    await pg_roles.set_password(pg_cluster, app_database.user_a, drifted)
    for name, value in {
        "KB_MCP_ENV": "development",
        "DB_HOST": app_database.host,
        "DB_PORT": str(app_database.port),
        "DB_USER": app_database.user_a,
        "DB_PASSWORD": app_database.password_a,
        "DB_NAME": app_database.database,
        "KB_MCP_TEST_MASTER_PASSWORD": pg_cluster.superuser_password,
    }.items():
        monkeypatch.setenv(name, value)
    argv = [
        "seed", "--env", "dev", "--if-missing", "--json",
        "--postgres-master-password-from-env", "KB_MCP_TEST_MASTER_PASSWORD",
        "--postgres-master-user", pg_cluster.superuser, "--reconcile-database",
    ]  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + fake_password() + fake_password())

    assert await _cli(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert await _login(app_database, app_database.password_a) == 1
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _login(app_database, drifted)

    session = aioboto3.Session()
    async with session.client(
        "secretsmanager", region_name="us-east-1", endpoint_url=aws_env
    ) as sm:
        master = json.loads(
            (await sm.get_secret_value(SecretId=MASTER_SECRET, VersionStage="AWSCURRENT"))[
                "SecretString"
            ]
        )
    assert master["password"] == pg_cluster.superuser_password
    assert master["username"] == pg_cluster.superuser
    assert {o.get("name") or o.get("role") for o in first} >= {PG_SECRET, MASTER_SECRET}

    monkeypatch.setenv("DB_PASSWORD", fake_password())  # a changed .env does not win
    assert await _cli(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert {o["action"] for o in second if o.get("name") == PG_SECRET} == {"kept"}
    assert await _login(app_database, app_database.password_a) == 1
