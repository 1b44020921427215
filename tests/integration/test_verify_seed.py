"""`kb-mcp secrets seed` and `verify` against moto, a real PostgreSQL and the fake OpenAI API."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest
from pydantic import SecretStr

from kb_mcp.config import load_settings
from kb_mcp.errors import ConfigError
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops import seed, verify
from kb_mcp.ops.seed import seed_secrets
from kb_mcp.ops.verify import verify_secrets
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.fakes import WATCHED, fake_auth_token, fake_openai_key, watch

OPENAI_SECRET = "kb-mcp/dev/openai-api-key"
PG_SECRET = "kb-mcp/dev/postgres-credentials"


@pytest.fixture
async def sm(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAIServer
) -> AsyncIterator[Any]:
    """A Secrets Manager client on moto, in a development environment."""
    monkeypatch.setenv("KB_MCP_ENV", "development")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    for name in ("OPENAI_API_KEY", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"):
        monkeypatch.delenv(name, raising=False)
    session = aioboto3.Session()
    async with session.client(
        "secretsmanager", region_name="us-east-1", endpoint_url=aws_env
    ) as client:
        yield client


async def _cli(module: Any, argv: list[str]) -> int:
    """Run `kb-mcp secrets ARGV` as the console script does (its own event loop)."""
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(dest="op", required=True))
    args = parser.parse_args(argv)
    code: int = await asyncio.to_thread(args.handler, args)
    return code


def _no_values(text: str) -> None:
    """No generated value and no value the code registered for masking appears in `text`."""
    values = WATCHED | secret_registry().values()
    assert not [v for v in values if v in text], "a secret value appeared in the output"


async def _current(sm: Any, name: str) -> tuple[str, str]:
    response = await sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    return response["VersionId"], response["SecretString"]


async def test_seed_then_verify_from_the_command_line(
    sm: Any,
    app_database: AppDatabase,
    fake_openai: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Seeded from env vars, both secrets verify: fetched, valid, database and key accepted."""
    key = fake_openai_key()
    fake_openai.allow_key(key)
    monkeypatch.setenv("SEED_OPENAI_KEY", key)
    monkeypatch.setenv("SEED_PG_JSON", app_database.secret_json("a"))
    argv = ["seed", "--openai-key-from-env", "SEED_OPENAI_KEY"]
    argv += ["--postgres-json-from-env", "SEED_PG_JSON"]
    assert await _cli(seed, argv) == 0
    out, err = capsys.readouterr()
    assert f"created   {OPENAI_SECRET}" in out
    assert f"created   {PG_SECRET}" in out
    assert (await _current(sm, OPENAI_SECRET))[1] == key

    assert await _cli(verify, ["verify", "--probe-openai", "--json"]) == 0
    out2, err2 = capsys.readouterr()
    report = json.loads(out2)
    assert report["ok"] is True
    by_name = {s["name"]: s for s in report["secrets"]}
    pg = by_name[PG_SECRET]
    assert pg["version_id"] == (await _current(sm, PG_SECRET))[0]
    assert pg["age_days"] < 1
    assert pg["detail"].startswith(f"logged in as {app_database.user_a}@")
    assert "server 16" in pg["detail"]
    assert "models listed" in by_name[OPENAI_SECRET]["detail"]
    _no_values(out + err + out2 + err2)


async def test_seed_is_idempotent(sm: Any, app_database: AppDatabase) -> None:
    """A rerun with the same values changes nothing; a new value is a new version."""
    settings = load_settings()
    key = SecretStr(fake_openai_key())
    pg = SecretStr(app_database.secret_json("a"))
    first = await seed_secrets(settings, openai_key=key, postgres_json=pg)
    assert [o.action for o in first] == ["created", "created"]
    again = await seed_secrets(settings, openai_key=key, postgres_json=pg)
    assert [o.action for o in again] == ["unchanged", "unchanged"]
    assert [o.version_id for o in again] == [o.version_id for o in first]

    other = SecretStr(app_database.secret_json("b"))
    kept = await seed_secrets(settings, openai_key=key, postgres_json=other, if_missing=True)
    assert [o.action for o in kept] == ["unchanged", "kept"]
    updated = await seed_secrets(settings, openai_key=key, postgres_json=other)
    assert updated[1].action == "updated"
    assert (await _current(sm, PG_SECRET)) == (updated[1].version_id, other.get_secret_value())


async def test_seed_generates_a_key_once_and_seeds_extras(
    sm: Any, app_database: AppDatabase
) -> None:
    """A generated key is written only when missing; master and auth-token secrets are seeded."""
    settings = load_settings(auth_token_secret_name="kb-mcp/dev/mcp-auth-token")
    pg = SecretStr(app_database.secret_json("a"))
    token = SecretStr(fake_auth_token())
    first = await seed_secrets(
        settings,
        postgres_json=pg,
        postgres_master_json=SecretStr(app_database.secret_json("b")),
        auth_token=token,
        generate_openai_key_if_missing=True,
    )
    assert [o.name for o in first] == [
        OPENAI_SECRET,
        PG_SECRET,
        "kb-mcp/dev/postgres-master",
        "kb-mcp/dev/mcp-auth-token",
    ]
    assert {o.action for o in first} == {"created"}
    _, generated = await _current(sm, OPENAI_SECRET)
    watch(generated)
    assert generated.startswith("sk-")
    again = await seed_secrets(settings, postgres_json=pg, generate_openai_key_if_missing=True)
    assert again[0].action == "kept"
    assert (await _current(sm, OPENAI_SECRET))[1] == generated


async def test_seed_refuses_production_and_bad_values(
    sm: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Production is refused unless forced; a malformed value is never written."""
    monkeypatch.setenv("KB_MCP_ENV", "production")
    monkeypatch.setenv("SEED_OPENAI_KEY", fake_openai_key())
    assert await _cli(seed, ["seed", "--openai-key-from-env", "SEED_OPENAI_KEY"]) == 1
    _, err = capsys.readouterr()
    assert "refusing" in err
    with pytest.raises(ConfigError):
        await seed_secrets(load_settings(), openai_key=SecretStr(fake_openai_key()))
    assert (await sm.list_secrets())["SecretList"] == []

    monkeypatch.setenv("KB_MCP_ENV", "development")
    with pytest.raises(ValueError, match="openai-api-key"):
        await seed_secrets(load_settings(), openai_key=SecretStr("too-short"))
    assert (await sm.list_secrets())["SecretList"] == []


async def test_verify_reports_each_broken_secret(
    sm: Any, app_database: AppDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused password, a malformed key and a missing token each fail, exit 1, no values."""
    wrong = json.loads(app_database.secret_json("a"))
    wrong["password"] = "pw-" + fake_openai_key()[3:]
    watch(wrong["password"])
    await sm.create_secret(Name=PG_SECRET, SecretString=json.dumps(wrong))
    await sm.create_secret(Name=OPENAI_SECRET, SecretString="short-value")
    settings = load_settings(auth_token_secret_name="kb-mcp/dev/mcp-auth-token")
    report = await verify_secrets(settings)
    assert not report.ok
    by_name = {c.name: c for c in report.checks}
    assert by_name[PG_SECRET].error_class == "InvalidPasswordError (28P01)"
    assert by_name[PG_SECRET].version_id  # fetched fine; the login failed
    assert by_name[OPENAI_SECRET].error_class == "SecretFormatError"
    assert by_name["kb-mcp/dev/mcp-auth-token"].error_class == "SecretNotFoundError"

    assert await _cli(verify, ["verify"]) == 1
    out, err = capsys.readouterr()
    assert "ERROR  kb-mcp/dev/postgres-credentials  InvalidPasswordError" in out
    assert "verification failed" in out
    assert "short-value" not in out + err
    _no_values(out + err)
