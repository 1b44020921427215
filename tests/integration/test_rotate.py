"""`kb-mcp secrets rotate` against moto, a real PostgreSQL cluster and the fake OpenAI API."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, get_args

import aioboto3
import asyncpg
import httpx2
import pytest
from pydantic import SecretStr

from kb_mcp.config import Settings, load_settings
from kb_mcp.db.sqltext import quote_ident
from kb_mcp.devstack.local_openai import AcceptedKeys, KeysFromSecrets, LocalOpenAIServer
from kb_mcp.devstack.postgres import PostgresCluster
from kb_mcp.errors import RotationError, SecretNotFoundError
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops import rotation as rotate
from kb_mcp.ops.rotation.command import rollback_openai, rotate_openai, rotate_postgres
from kb_mcp.ops.rotation.postgres import other_username
from kb_mcp.ops.rotation.steps import StopAfter
from kb_mcp.secrets.schemas import PostgresCredentials
from tests.conftest import CapturedLogs
from tests.plugins.servers import AppDatabase
from tests.support import pg_roles
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.fakes import WATCHED, fake_openai_key, fake_password, postgres_secret_json, watch

PG_SECRET = "kb-mcp/prod/postgres-credentials"
MASTER_SECRET = "kb-mcp/prod/postgres-master"
OPENAI_SECRET = "kb-mcp/prod/openai-api-key"


@dataclass
class RotationEnv:
    settings: Settings
    client: Any
    pg: PostgresCluster
    app: AppDatabase
    openai: FakeOpenAIServer
    openai_key: str

    async def stages(self, name: str = PG_SECRET) -> dict[str, list[str]]:
        described = await self.client.describe_secret(SecretId=name)
        return {k: sorted(v) for k, v in described["VersionIdsToStages"].items()}

    async def read(self, stage: str, name: str = PG_SECRET) -> tuple[str, str]:
        response = await self.client.get_secret_value(SecretId=name, VersionStage=stage)
        value = response["SecretString"]
        watch(value)
        return response["VersionId"], value

    async def credentials(self, stage: str = "AWSCURRENT") -> PostgresCredentials:
        return PostgresCredentials.from_secret_string((await self.read(stage))[1])


async def _login(creds: PostgresCredentials) -> list[str]:
    """Log in with `creds` and read the shared table."""
    conn = await asyncpg.connect(**creds.connect_kwargs())
    try:
        rows = await conn.fetch("SELECT note FROM notes ORDER BY note")
    finally:
        await conn.close()
    return [row["note"] for row in rows]


def _stage_owner(stages: dict[str, list[str]], stage: str) -> str | None:
    return next((v for v, labels in stages.items() if stage in labels), None)


@pytest.fixture
async def renv(
    aws_env: str,
    pg_cluster: PostgresCluster,
    app_database: AppDatabase,
    fake_openai: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[RotationEnv]:
    """Both secrets and a master secret in moto; a table the app user created."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("KB_MCP_ENV", "production")
    settings = load_settings(secrets_retry_budget_s=1.0)
    key = fake_openai_key()
    fake_openai.allow_key(key)
    master = postgres_secret_json(
        username=pg_cluster.superuser,
        password=pg_cluster.superuser_password,
        host=pg_cluster.host,
        port=pg_cluster.port,
        database="postgres",
    )
    conn = await asyncpg.connect(
        user=app_database.user_a,
        password=app_database.password_a,
        host=app_database.host,
        port=app_database.port,
        database=app_database.database,
    )
    try:
        await conn.execute("CREATE TABLE notes (note text)")
        await conn.execute("INSERT INTO notes VALUES ('written by a')")
    finally:
        await conn.close()
    session = aioboto3.Session()
    async with session.client(
        "secretsmanager", region_name="us-east-1", endpoint_url=aws_env
    ) as client:
        await client.create_secret(Name=PG_SECRET, SecretString=app_database.secret_json("a"))
        await client.create_secret(Name=MASTER_SECRET, SecretString=master)
        await client.create_secret(Name=OPENAI_SECRET, SecretString=key)
        try:
            yield RotationEnv(settings, client, pg_cluster, app_database, fake_openai, key)
        finally:
            await pg_roles.drop_role(pg_cluster, other_username(app_database.user_a))


async def _cli(argv: list[str]) -> int:
    """Run `kb-mcp secrets rotate ARGV` as the console script does (its own event loop)."""
    parser = argparse.ArgumentParser()
    rotate.register(parser.add_subparsers(dest="op", required=True))
    args = parser.parse_args(["rotate", *argv])
    code: int = await asyncio.to_thread(args.handler, args)
    return code


def _assert_no_values(text: str) -> None:
    """No generated value and no value the code registered for masking appears in `text`."""
    leaked = [value for value in WATCHED | secret_registry().values() if value in text]
    assert not leaked, f"{len(leaked)} secret value(s) in command output"


# ------------------------------------------------------------------ PostgreSQL


async def test_postgres_rotation_alternates_users_with_overlap(
    renv: RotationEnv, captured_logs: CapturedLogs
) -> None:
    """A -> A_clone -> A: roles really created/altered, AWSCURRENT moves, old user still works."""
    first_current = _stage_owner(await renv.stages(), "AWSCURRENT")
    original = await renv.credentials()

    result = await rotate_postgres(renv.settings)
    assert result.completed
    assert result.steps_done == ("create", "set", "test", "finish")
    assert result.old_version_id == first_current
    stages = await renv.stages()
    assert stages[result.new_version_id] == ["AWSCURRENT"]
    assert stages[result.old_version_id] == ["AWSPREVIOUS"]
    clone = await renv.credentials()
    assert clone.username == renv.app.user_a + "_clone"
    assert await _login(clone) == ["written by a"]  # the clone reaches the same table
    assert await _login(original) == ["written by a"]  # overlap: the old user still works

    second = await rotate_postgres(renv.settings)
    assert second.completed
    assert second.old_version_id == result.new_version_id
    back = await renv.credentials()
    assert back.username == renv.app.user_a
    assert back.password.get_secret_value() != original.password.get_secret_value()
    assert await _login(back) == ["written by a"]
    assert await _login(clone) == ["written by a"]  # the previous version still logs in
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _login(original)  # re-passworded by the second rotation
    stages = await renv.stages()
    assert _stage_owner(stages, "AWSPREVIOUS") == result.new_version_id
    assert _stage_owner(stages, "AWSPENDING") is None
    steps = captured_logs.events("rotation.step")
    assert [s["step"] for s in steps] == ["create", "set", "test", "finish"] * 2


@pytest.mark.parametrize("stop_after", get_args(StopAfter))
async def test_postgres_rotation_resumes_after_each_step(
    renv: RotationEnv, stop_after: StopAfter
) -> None:
    """Interrupted after a step, AWSCURRENT is unchanged and a rerun finishes the same version."""
    before = await renv.stages()
    current = _stage_owner(before, "AWSCURRENT")
    partial = await rotate_postgres(renv.settings, stop_after=stop_after)
    assert not partial.completed
    assert partial.steps_done[-1] == stop_after
    stages = await renv.stages()
    assert _stage_owner(stages, "AWSCURRENT") == current
    assert _stage_owner(stages, "AWSPENDING") == partial.new_version_id

    resumed = await rotate_postgres(renv.settings)
    assert resumed.completed
    assert resumed.resumed
    assert resumed.new_version_id == partial.new_version_id
    assert _stage_owner(await renv.stages(), "AWSCURRENT") == partial.new_version_id
    assert await _login(await renv.credentials()) == ["written by a"]


async def test_failed_test_step_leaves_current_and_resumes_once_fixed(renv: RotationEnv) -> None:
    """A pending user that cannot log in fails the test step; fixed, the rerun completes."""
    clone = other_username(renv.app.user_a)
    await renv.pg.create_role(clone, fake_password())
    await renv.pg.execute(f"ALTER ROLE {quote_ident(clone)} CONNECTION LIMIT 0")
    current = _stage_owner(await renv.stages(), "AWSCURRENT")
    with pytest.raises(RotationError) as caught:
        await rotate_postgres(renv.settings)
    assert "did not log in" in str(caught.value)
    pending = caught.value.version_id
    stages = await renv.stages()
    assert _stage_owner(stages, "AWSCURRENT") == current
    assert _stage_owner(stages, "AWSPENDING") == pending

    await renv.pg.execute(f"ALTER ROLE {quote_ident(clone)} CONNECTION LIMIT -1")
    result = await rotate_postgres(renv.settings)
    assert result.completed
    assert result.new_version_id == pending


async def test_master_without_createrole_fails_with_exit_1(
    renv: RotationEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """A master secret lacking CREATEROLE fails the set step: exit 1, AWSCURRENT untouched."""
    await renv.client.put_secret_value(
        SecretId=MASTER_SECRET, SecretString=renv.app.secret_json("b")
    )
    current = _stage_owner(await renv.stages(), "AWSCURRENT")
    assert await _cli(["postgres"]) == 1
    out, err = capsys.readouterr()
    assert "rotation failed" in err
    assert "could not set the pending credentials" in err
    assert "CREATEROLE" in err
    assert _stage_owner(await renv.stages(), "AWSCURRENT") == current
    _assert_no_values(out + err)


async def test_missing_master_secret_changes_nothing(renv: RotationEnv) -> None:
    """Without the master secret the rotation stops before writing any version."""
    before = await renv.stages()
    with pytest.raises(SecretNotFoundError):
        await rotate_postgres(renv.settings, master_secret="kb-mcp/prod/no-such-master")
    assert await renv.stages() == before


async def test_dry_run_changes_nothing(
    renv: RotationEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints the plan (names, versions, users) and leaves every version as it was."""
    before = await renv.stages()
    assert await _cli(["postgres", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "dry run, nothing changed" in out
    assert f"would create role {renv.app.user_a}_clone" in out
    assert await renv.stages() == before
    assert not await renv.pg.fetch(
        "SELECT 1 FROM pg_roles WHERE rolname = $1", other_username(renv.app.user_a)
    )
    _assert_no_values(out + err)


async def test_cli_rotation_prints_versions_never_values(
    renv: RotationEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's JSON result names versions and users; no password appears anywhere."""
    assert await _cli(["postgres", "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["completed"] is True
    assert result["new_version_id"] == _stage_owner(await renv.stages(), "AWSCURRENT")
    await renv.read("AWSCURRENT")  # watches the new value for the leak check
    _assert_no_values(out + err)


# ------------------------------------------------------------------ OpenAI


async def _models_status(base_url: str, key: str) -> int:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        return (await http.get(f"{base_url}/models")).status_code


async def test_openai_rotation_with_generated_key(renv: RotationEnv, aws_env: str) -> None:
    """A generated key is accepted by a secret-backed endpoint, tested, and becomes AWSCURRENT.

    The rotation has no hook into the endpoint: it accepts the keys of the secret's live
    versions, so the previous key stays valid (AWSPREVIOUS) and a key two rotations old
    is refused.
    """
    keys = AcceptedKeys(loader=KeysFromSecrets([OPENAI_SECRET], region="us-east-1",
                                               endpoint_url=aws_env))  # fmt: skip
    with LocalOpenAIServer(keys) as endpoint:
        settings = renv.settings.model_copy(update={"openai_base_url": endpoint.base_url})
        first = await rotate_openai(settings, new_key=None, generate=True)
        second = await rotate_openai(settings, new_key=None, generate=True)

        assert first.completed
        assert second.completed
        version, value = await renv.read("AWSCURRENT", OPENAI_SECRET)
        assert version == second.new_version_id
        previous = await renv.read("AWSPREVIOUS", OPENAI_SECRET)
        assert previous[0] == first.new_version_id
        assert len({value, previous[1], renv.openai_key}) == 3
        await keys.reload()  # what the endpoint does once its loaded keys are max_age_s old
        statuses = [await _models_status(endpoint.base_url, k)
                    for k in (value, previous[1], renv.openai_key)]  # fmt: skip
        assert statuses == [200, 200, 401]


async def test_openai_rejected_key_then_corrected_from_env(
    renv: RotationEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key the endpoint refuses fails the test step; a corrected key from an env var finishes."""
    current = _stage_owner(await renv.stages(OPENAI_SECRET), "AWSCURRENT")
    rejected = fake_openai_key()
    with pytest.raises(RotationError) as caught:
        await rotate_openai(renv.settings, new_key=SecretStr(rejected), generate=False)
    assert "rejected the tested key" in str(caught.value)
    assert _stage_owner(await renv.stages(OPENAI_SECRET), "AWSCURRENT") == current

    good = fake_openai_key()
    renv.openai.allow_key(good)
    monkeypatch.setenv("KB_MCP_TEST_NEW_KEY", good)
    assert await _cli(["openai", "--new-value-from-env", "KB_MCP_TEST_NEW_KEY"]) == 0
    out, err = capsys.readouterr()
    assert "complete" in out
    assert (await renv.read("AWSCURRENT", OPENAI_SECRET))[1] == good
    assert (await renv.stages(OPENAI_SECRET)).get(caught.value.version_id, []) == []
    _assert_no_values(out + err)


async def test_openai_key_from_stdin(
    renv: RotationEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --new-value-from-env the key is read from stdin, never from the arguments."""
    key = fake_openai_key()
    renv.openai.allow_key(key)
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    assert await _cli(["openai"]) == 0
    out, err = capsys.readouterr()
    assert (await renv.read("AWSCURRENT", OPENAI_SECRET))[1] == key
    _assert_no_values(out + err)


# ------------------------------------------------------------------ rollback


async def test_rollback_moves_current_back_after_testing_previous(
    renv: RotationEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """--rollback tests AWSPREVIOUS, then makes it AWSCURRENT again; --dry-run changes nothing."""
    rotated = await rotate_postgres(renv.settings)
    after_rotation = await renv.stages()
    assert await _cli(["postgres", "--rollback", "--dry-run"]) == 0
    assert await renv.stages() == after_rotation

    assert await _cli(["postgres", "--rollback"]) == 0
    out, err = capsys.readouterr()
    assert f"rollback of {PG_SECRET}: complete" in out
    stages = await renv.stages()
    assert _stage_owner(stages, "AWSCURRENT") == rotated.old_version_id
    assert _stage_owner(stages, "AWSPREVIOUS") == rotated.new_version_id
    assert (await renv.credentials()).username == renv.app.user_a
    assert await _login(await renv.credentials()) == ["written by a"]
    _assert_no_values(out + err)


async def test_rollback_refused_when_previous_no_longer_works(renv: RotationEnv) -> None:
    """A previous key that was already revoked is not restored: AWSCURRENT stays."""
    new_key = fake_openai_key()
    renv.openai.allow_key(new_key)
    rotated = await rotate_openai(renv.settings, new_key=SecretStr(new_key))
    renv.openai.revoke_key(renv.openai_key)
    with pytest.raises(RotationError, match="rejected"):
        await rollback_openai(renv.settings)
    stages = await renv.stages(OPENAI_SECRET)
    assert _stage_owner(stages, "AWSCURRENT") == rotated.new_version_id
    assert _stage_owner(stages, "AWSPREVIOUS") == rotated.old_version_id


# ------------------------------------------------------------------ no servers needed


def test_users_alternate_between_base_and_clone() -> None:
    """`<base>` and `<base>_clone` take turns; a name too long for a clone is refused."""
    assert other_username("kb_app") == "kb_app_clone"
    assert other_username("kb_app_clone") == "kb_app"
    assert other_username(other_username("kb_app")) == "kb_app"
    with pytest.raises(ValueError, match="too long"):
        other_username("x" * 60)


@pytest.mark.parametrize(
    "argv",
    [
        ["postgres", "--generate"],
        ["postgres", "--new-value-from-env", "SOME_VAR"],
        ["openai", "--rollback", "--generate"],
        ["openai", "--new-value-from-env", "KB_MCP_TEST_UNSET_VARIABLE"],
    ],
)
async def test_bad_usage_exits_2(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Options that do not fit the target, or an empty key variable, are usage errors."""
    monkeypatch.delenv("KB_MCP_TEST_UNSET_VARIABLE", raising=False)
    assert await _cli(argv) == 2
