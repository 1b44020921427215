"""The development fallback of `open_secrets_provider`: when it happens, and when it must not.

It happens only with `KB_MCP_ENV=development` and only when Secrets Manager is unreachable
or there are no AWS credentials. A missing secret or a denied read is a real error in every
environment; staging and production never fall back.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import aioboto3
import pytest
from secretswap.metrics import MetricsRegistry

from kb_mcp.config import Settings, load_settings
from kb_mcp.devstack.moto_server import MotoSecretsServer
from kb_mcp.errors import SecretAccessDeniedError, SecretNotFoundError, SecretsUnavailableError
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.env import EnvSecretsProvider
from kb_mcp.secrets.factory import FALLBACK_WARNING, open_secrets_provider
from kb_mcp.secrets.schemas import OpenAIKeySecret, PostgresCredentials
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_openai_key, fake_password, postgres_secret_json
from tests.support.fault_proxy import ACCESS_DENIED, FaultProxy

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@dataclass
class Fallback:
    """The values the fallback variables hold for one test."""

    key: str
    password: str


@pytest.fixture
def fallback_vars(monkeypatch: pytest.MonkeyPatch) -> Fallback:
    """`OPENAI_API_KEY` and `DB_*` set to fresh fakes; other kb-mcp variables cleared."""
    for name in list(os.environ):
        if name.startswith("KB_MCP_") or name == "SECRETS_CACHE_TTL_SECONDS":
            monkeypatch.delenv(name)
    values = Fallback(key=fake_openai_key(), password=fake_password())
    monkeypatch.setenv("OPENAI_API_KEY", values.key)
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", "5433")
    monkeypatch.setenv("DB_USER", "kb_dev")
    monkeypatch.setenv("DB_PASSWORD", values.password)
    monkeypatch.setenv("DB_NAME", "kb")
    monkeypatch.setenv("KB_MCP_SECRETS_RETRY_BUDGET_S", "0.2")
    monkeypatch.setenv("KB_MCP_AWS_CONNECT_TIMEOUT_S", "0.5")
    return values


@pytest.fixture
def closed_endpoint() -> str:
    """The URL of a port on 127.0.0.1 nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_server: MotoSecretsServer
) -> str:
    """No AWS credentials anywhere (env, files, instance metadata); endpoint is moto."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server.endpoint_url


def _settings(monkeypatch: pytest.MonkeyPatch, env: str, endpoint: str) -> Settings:
    monkeypatch.setenv("KB_MCP_ENV", env)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return load_settings()


def _warnings(captured: CapturedLogs) -> list[dict[str, object]]:
    return captured.events(FALLBACK_WARNING)


async def _assert_serves_fallback(
    provider: object, settings: Settings, values: Fallback, captured: CapturedLogs
) -> None:
    assert isinstance(provider, EnvSecretsProvider)
    (warning,) = _warnings(captured)
    assert warning["level"] == "warning"
    key = await provider.get_secret_json(settings.openai_secret_name, OpenAIKeySecret)
    pg = await provider.get_secret_json(settings.postgres_secret_name, PostgresCredentials)
    assert key.value.api_key.get_secret_value() == values.key
    assert pg.value.connect_kwargs() == {
        "user": "kb_dev",
        "password": values.password,
        "host": "127.0.0.1",
        "port": 5433,
        "database": "kb",
    }
    assert (key.version_id, pg.version_id) == ("env", "env")
    await provider.aclose()


async def test_falls_back_in_development_when_unreachable(
    aws_env: str,
    fallback_vars: Fallback,
    closed_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: CapturedLogs,
) -> None:
    """Development + unreachable endpoint: the exact warning, then env variables serve."""
    settings = _settings(monkeypatch, "development", closed_endpoint)
    provider = await open_secrets_provider(settings, MetricsRegistry())
    await _assert_serves_fallback(provider, settings, fallback_vars, captured_logs)


async def test_falls_back_in_development_without_credentials(
    no_credentials: str,
    fallback_vars: Fallback,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: CapturedLogs,
) -> None:
    """Development + no AWS credentials anywhere: the same warning and fallback."""
    settings = _settings(monkeypatch, "development", no_credentials)
    provider = await open_secrets_provider(settings, MetricsRegistry())
    await _assert_serves_fallback(provider, settings, fallback_vars, captured_logs)
    (warning,) = _warnings(captured_logs)
    assert warning["error"] == "NoCredentialsError"


@pytest.mark.parametrize("env", ["staging", "production"])
async def test_never_falls_back_outside_development_when_unreachable(
    aws_env: str,
    fallback_vars: Fallback,
    closed_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: CapturedLogs,
    env: str,
) -> None:
    """Staging and production raise SecretsUnavailableError, even with fallback vars set."""
    settings = _settings(monkeypatch, env, closed_endpoint)
    with pytest.raises(SecretsUnavailableError) as info:
        await open_secrets_provider(settings, MetricsRegistry())
    assert info.value.secret_name in settings.required_secret_names
    assert _warnings(captured_logs) == []


@pytest.mark.parametrize("env", ["staging", "production"])
async def test_never_falls_back_outside_development_without_credentials(
    no_credentials: str,
    fallback_vars: Fallback,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: CapturedLogs,
    env: str,
) -> None:
    """Missing credentials in staging or production is an error naming what to set."""
    settings = _settings(monkeypatch, env, no_credentials)
    with pytest.raises(SecretsUnavailableError) as info:
        await open_secrets_provider(settings, MetricsRegistry())
    assert info.value.aws_error == "NoCredentialsError"
    assert "AWS_ACCESS_KEY_ID" in info.value.hint
    assert _warnings(captured_logs) == []


async def test_missing_secret_is_an_error_in_development(
    aws_env: str,
    fallback_vars: Fallback,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: CapturedLogs,
) -> None:
    """Secrets Manager reachable but the secret absent: ResourceNotFound, no fallback."""
    settings = _settings(monkeypatch, "development", aws_env)
    with pytest.raises(SecretNotFoundError) as info:
        await open_secrets_provider(settings, MetricsRegistry())
    assert info.value.aws_error == "ResourceNotFoundException"
    assert _warnings(captured_logs) == []


async def test_access_denied_is_an_error_in_development(
    aws_env: str,
    fallback_vars: Fallback,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: CapturedLogs,
) -> None:
    """An AWS-shaped AccessDeniedException (from the fault proxy) never falls back."""
    with FaultProxy(aws_env) as proxy:
        proxy.fail_all(ACCESS_DENIED)
        settings = _settings(monkeypatch, "development", proxy.endpoint_url)
        with pytest.raises(SecretAccessDeniedError) as info:
            await open_secrets_provider(settings, MetricsRegistry())
    assert info.value.aws_error == "AccessDeniedException"
    assert _warnings(captured_logs) == []


async def test_reachable_secrets_manager_is_used_in_development(
    aws_env: str,
    fallback_vars: Fallback,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: CapturedLogs,
) -> None:
    """When Secrets Manager answers, development uses it, with both secrets already cached."""
    settings = _settings(monkeypatch, "development", aws_env)
    stored_key = fake_openai_key()
    async with aioboto3.Session().client("secretsmanager", endpoint_url=aws_env) as client:
        await client.create_secret(Name=settings.openai_secret_name, SecretString=stored_key)
        await client.create_secret(
            Name=settings.postgres_secret_name,
            SecretString=postgres_secret_json(
                username="kb", password=fake_password(), host="h", port=5432, database="kb"
            ),
        )
    metrics = MetricsRegistry()
    provider = await open_secrets_provider(settings, metrics)
    try:
        assert isinstance(provider, AwsSecretsManagerProvider)
        assert metrics.total("SecretsApiCalls") == 2
        key = await provider.get_secret_json(settings.openai_secret_name, OpenAIKeySecret)
        assert key.value.api_key.get_secret_value() == stored_key
        assert metrics.total("SecretsApiCalls") == 2
    finally:
        await provider.aclose()
    assert _warnings(captured_logs) == []
