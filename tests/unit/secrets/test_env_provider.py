"""`EnvSecretsProvider` (the development fallback) on its own: what it serves, and the error
for each variable it needs and cannot find: the secret's name and the variables to set,
never a value."""

from __future__ import annotations

import json
import os

import pytest
from secretswap.port import AWSCURRENT

from kb_mcp.config import Settings, load_settings
from kb_mcp.errors import SecretNotFoundError
from kb_mcp.observability.redaction import SecretValueRegistry
from kb_mcp.secrets.env import ENV_VERSION_ID, EnvSecretsProvider
from kb_mcp.secrets.schemas import OpenAIKeySecret, PostgresCredentials
from tests.support.fakes import fake_auth_token, fake_openai_key, fake_password

AUTH_SECRET = "kb-mcp/dev/auth-token"
"""A secret's name, not a value."""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: nothing from the outer environment."""
    for name in list(os.environ):
        if name.startswith(("KB_MCP_", "AWS_", "DB_", "OPENAI_", "SECRETS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KB_MCP_ENV", "development")


def _database(monkeypatch: pytest.MonkeyPatch, **skip: bool) -> str:
    """The DB_* variables (but those named in `skip`); returns the password."""
    password = fake_password()
    values = {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": "5433",
        "DB_USER": "kb_dev",
        "DB_PASSWORD": password,
        "DB_NAME": "kb",
    }
    for name, value in values.items():
        if not skip.get(name):
            monkeypatch.setenv(name, value)
    return password


def _provider() -> tuple[EnvSecretsProvider, Settings, SecretValueRegistry]:
    settings = load_settings()
    registry = SecretValueRegistry()
    return EnvSecretsProvider(settings, registry=registry), settings, registry


def _assert_clean(error: SecretNotFoundError, *values: str) -> None:
    text = f"{error} {error.hint} {error!r}"
    for value in values:
        assert value not in text


async def test_serves_every_secret_from_its_variables_and_masks_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, token = fake_openai_key(), fake_auth_token()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("KB_MCP_AUTH_TOKEN_SECRET", AUTH_SECRET)
    monkeypatch.setenv("KB_MCP_AUTH_TOKEN", token)
    password = _database(monkeypatch)
    provider, settings, registry = _provider()

    openai = await provider.get_secret_json(settings.openai_secret_name, OpenAIKeySecret)
    pg = await provider.get_secret_json(settings.postgres_secret_name, PostgresCredentials)
    auth = await provider.get_secret(AUTH_SECRET)

    assert openai.value.api_key.get_secret_value() == key
    assert pg.value.connect_kwargs()["password"] == password
    assert auth.value.get_secret_value() == token
    assert {openai.version_id, pg.version_id, auth.version_id} == {ENV_VERSION_ID}
    assert auth.stages == (AWSCURRENT,)
    masked = registry.mask(f"key {key} password {password} token {token}")
    assert key not in masked
    assert password not in masked
    assert token not in masked


async def test_values_never_change_a_refresh_or_current_stage_is_the_same_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing rotates here: a forced refresh, the AWSCURRENT stage and a read after
    `invalidate` all give the one version."""
    key = fake_openai_key()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    provider, settings, _ = _provider()
    name = settings.openai_secret_name

    first = await provider.get_secret(name)
    provider.invalidate(name)
    provider.invalidate()
    again = [
        await provider.refresh(name, seen_version=ENV_VERSION_ID),
        await provider.get_secret_stage(name, AWSCURRENT),
        await provider.get_secret(name),
    ]

    for version in again:
        assert version.version_id == first.version_id == ENV_VERSION_ID
        assert version.value.get_secret_value() == key
    await provider.aclose()


async def test_no_previous_version_exists_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai_key())
    provider, settings, _ = _provider()

    with pytest.raises(SecretNotFoundError) as caught:
        await provider.get_secret_stage(settings.openai_secret_name, "AWSPREVIOUS")

    error = caught.value
    assert error.secret_name == settings.openai_secret_name
    assert "AWSPREVIOUS" in str(error)
    assert "Secrets Manager" in error.hint
    assert error.aws_error == "ResourceNotFoundException"


async def test_status_lists_what_was_served_never_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai_key())
    _database(monkeypatch)
    provider, settings, _ = _provider()
    assert provider.status() == []

    await provider.get_secret(settings.postgres_secret_name)
    await provider.get_secret(settings.openai_secret_name)

    status = provider.status()
    assert [s.name for s in status] == sorted(
        [settings.openai_secret_name, settings.postgres_secret_name]
    )
    for entry in status:
        assert entry.version_id == ENV_VERSION_ID
        assert entry.stale is False
        assert entry.last_error is None
        assert entry.age_s >= 0


@pytest.mark.parametrize(
    "missing",
    [("DB_PASSWORD",), ("DB_HOST", "DB_NAME"), ("DB_HOST", "DB_PORT", "DB_USER", "DB_NAME")],
)
async def test_missing_database_variables_are_named_and_the_password_is_not_shown(
    monkeypatch: pytest.MonkeyPatch, missing: tuple[str, ...]
) -> None:
    password = _database(monkeypatch, **dict.fromkeys(missing, True))
    provider, settings, _ = _provider()

    with pytest.raises(SecretNotFoundError) as caught:
        await provider.get_secret_json(settings.postgres_secret_name, PostgresCredentials)

    error = caught.value
    assert error.secret_name == settings.postgres_secret_name
    assert f"{', '.join(missing)} not set" in str(error)
    assert all(name in error.hint for name in missing)
    _assert_clean(error, password)
    assert provider.status() == []  # nothing was served


async def test_an_empty_variable_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    password = _database(monkeypatch)
    monkeypatch.setenv("DB_HOST", "")
    provider, settings, _ = _provider()

    with pytest.raises(SecretNotFoundError, match="OPENAI_API_KEY not set"):
        await provider.get_secret(settings.openai_secret_name)
    with pytest.raises(SecretNotFoundError, match="DB_HOST not set") as caught:
        await provider.get_secret(settings.postgres_secret_name)
    _assert_clean(caught.value, password)


async def test_the_auth_token_needs_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_MCP_AUTH_TOKEN_SECRET", AUTH_SECRET)
    provider, _, _ = _provider()

    with pytest.raises(SecretNotFoundError, match="KB_MCP_AUTH_TOKEN not set") as caught:
        await provider.get_secret(AUTH_SECRET)

    assert caught.value.secret_name == AUTH_SECRET


async def test_a_name_no_variable_maps_to_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `KB_MCP_AUTH_TOKEN_SECRET` set, its name is not one the fallback serves, even
    with the token variable present."""
    token = fake_auth_token()
    monkeypatch.setenv("KB_MCP_AUTH_TOKEN", token)
    provider, _, _ = _provider()

    with pytest.raises(SecretNotFoundError, match="no environment variable maps") as caught:
        await provider.get_secret(AUTH_SECRET)

    assert caught.value.secret_name == AUTH_SECRET
    _assert_clean(caught.value, token)


async def test_the_database_secret_is_the_json_secrets_manager_would_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same shape as the AWS secret, so the same validation applies to both."""
    password = _database(monkeypatch)
    provider, settings, _ = _provider()

    raw = (await provider.get_secret(settings.postgres_secret_name)).value.get_secret_value()

    assert json.loads(raw) == {
        "username": "kb_dev",
        "password": password,
        "host": "127.0.0.1",
        "port": 5433,
        "database": "kb",
    }
