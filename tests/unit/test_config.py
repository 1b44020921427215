"""Settings: defaults, secret names per environment, overrides, errors naming the variable."""

from __future__ import annotations

import os

import pytest

from kb_mcp.config import Environment, Settings, load_settings
from kb_mcp.errors import ConfigError
from tests.support.fakes import fake_openai_key, fake_password


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kb-mcp, AWS or fallback variable from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("KB_MCP_", "AWS_", "DB_", "OPENAI_", "SECRETS_")):
            monkeypatch.delenv(name)


def test_defaults_fail_safe_to_production() -> None:
    """With nothing set: production, us-east-1, TTL 300 s, JSON logs, prod secret names."""
    settings = load_settings()
    assert settings.env is Environment.PRODUCTION
    assert settings.aws_region == "us-east-1"
    assert settings.aws_endpoint_url is None
    assert settings.cache_ttl_s == 300.0
    assert settings.json_logs is True
    assert settings.openai_api_key is None
    assert settings.required_secret_names == (
        "kb-mcp/prod/openai-api-key",
        "kb-mcp/prod/postgres-credentials",
    )


@pytest.mark.parametrize(
    ("env", "short"), [("development", "dev"), ("staging", "staging"), ("production", "prod")]
)
def test_secret_names_per_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, short: str
) -> None:
    """`KB_MCP_ENV` picks `kb-mcp/{dev|staging|prod}/...`."""
    monkeypatch.setenv("KB_MCP_ENV", env)
    settings = load_settings()
    assert settings.openai_secret_name == f"kb-mcp/{short}/openai-api-key"
    assert settings.postgres_secret_name == f"kb-mcp/{short}/postgres-credentials"


def test_overrides_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names, region, endpoint, TTL and the auth-token secret are read from their variables."""
    monkeypatch.setenv("KB_MCP_ENV", "staging")
    monkeypatch.setenv("KB_MCP_OPENAI_SECRET_NAME", "team/openai")
    monkeypatch.setenv("KB_MCP_POSTGRES_SECRET_NAME", "team/pg")
    monkeypatch.setenv("KB_MCP_AUTH_TOKEN_SECRET", "team/token")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("SECRETS_CACHE_TTL_SECONDS", "0.5")
    monkeypatch.setenv("KB_MCP_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.env is Environment.STAGING
    assert settings.required_secret_names == ("team/openai", "team/pg", "team/token")
    assert settings.aws_region == "eu-central-1"
    assert settings.aws_endpoint_url == "http://127.0.0.1:4566"
    assert settings.cache_ttl_s == 0.5
    assert settings.log_level == "DEBUG"


def test_aws_default_region_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """`AWS_DEFAULT_REGION` works when `AWS_REGION` is not set."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert load_settings().aws_region == "ap-south-1"


def test_keyword_overrides_take_field_names() -> None:
    """`load_settings(**overrides)` accepts field names (used by the CLI and tests)."""
    settings = load_settings(env="development", cache_ttl_s=5, aws_region="us-west-2")
    assert settings.env is Environment.DEVELOPMENT
    assert settings.cache_ttl_s == 5
    assert settings.json_logs is False


@pytest.mark.parametrize(
    ("log_format", "env", "json_logs"),
    [
        ("auto", "development", False),
        ("auto", "staging", True),
        ("json", "development", True),
        ("console", "production", False),
    ],
)
def test_log_format(log_format: str, env: str, json_logs: bool) -> None:
    """JSON lines in staging/production, console in development, unless forced."""
    assert load_settings(env=env, log_format=log_format).json_logs is json_logs


def test_fallback_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """`OPENAI_API_KEY` and `DB_*` are read, secrets as `SecretStr`."""
    key, password = fake_openai_key(), fake_password()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", "5433")
    monkeypatch.setenv("DB_USER", "kb")
    monkeypatch.setenv("DB_PASSWORD", password)
    monkeypatch.setenv("DB_NAME", "kb")
    settings = load_settings()
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == key
    assert settings.db_port == 5433
    assert key not in repr(settings)
    assert password not in repr(settings)
    assert password not in str(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRETS_CACHE_TTL_SECONDS", "0"),
        ("SECRETS_CACHE_TTL_SECONDS", "-5"),
        ("SECRETS_CACHE_TTL_SECONDS", "five-minutes-please"),
        ("KB_MCP_ENV", "prod-like-value"),
        ("DB_PORT", "port-number-99999"),
        ("DB_PORT", "70000"),
        ("KB_MCP_LOG_LEVEL", "verbose-level"),
        ("KB_MCP_REFRESH_JITTER_RATIO", "1.5"),
        ("KB_MCP_DB_POOL_MAX_SIZE", "0"),
    ],
)
def test_invalid_values_name_the_variable_and_not_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """An invalid setting is a ConfigError naming the variable, never echoing the value."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    error = info.value
    assert error.variable == variable
    assert variable in str(error)
    assert str(error).startswith(f"invalid setting {variable}: ")
    assert variable in error.hint
    if len(value) > 2:
        assert value not in str(error)
        assert value not in repr(error)
    assert error.__cause__ is None
    assert isinstance(error, ValueError)


def test_db_password_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret-valued variable next to an invalid one stays out of the error and its chain."""
    password = fake_password()
    monkeypatch.setenv("DB_PASSWORD", password)
    monkeypatch.setenv("DB_PORT", password)
    with pytest.raises(ConfigError) as info:
        load_settings()
    error = info.value
    assert error.variable == "DB_PORT"
    texts = [str(error), repr(error), error.hint, repr(error.args)]
    context = error.__context__
    while context is not None:
        texts.append(str(context))
        context = context.__context__
    assert all(password not in text for text in texts)
    assert error.__suppress_context__


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are read."""
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.cache_ttl_s = 1


def test_replica_regions_and_their_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """KB_MCP_SECRETS_REPLICA_REGIONS keeps its order; a region's endpoint overrides the
    shared one, others fall back to AWS_ENDPOINT_URL."""
    monkeypatch.setenv("KB_MCP_SECRETS_REPLICA_REGIONS", " us-west-2, eu-west-1 ")
    monkeypatch.setenv("KB_MCP_SECRETS_REGION_ENDPOINTS", "us-west-2=http://127.0.0.1:4567")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("KB_MCP_SECRETS_FAILBACK_INTERVAL_S", "5")
    settings = load_settings()
    assert settings.secrets_replica_regions == ("us-west-2", "eu-west-1")
    assert settings.secrets_endpoint_for("us-west-2") == "http://127.0.0.1:4567"
    assert settings.secrets_endpoint_for("eu-west-1") == "http://127.0.0.1:5000"
    assert settings.secrets_failback_interval_s == 5.0


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("KB_MCP_SECRETS_REPLICA_REGIONS", "us-east-1", "primary region"),
        ("KB_MCP_SECRETS_REPLICA_REGIONS", "us-west-2,us-west-2", "twice"),
        ("KB_MCP_SECRETS_REPLICA_REGIONS", "west", "not an aws region"),
        ("KB_MCP_SECRETS_REGION_ENDPOINTS", "us-west-2", "region=url"),
        ("KB_MCP_SECRETS_REGION_ENDPOINTS", "us-west-2=ftp://x", "not an http"),
        ("KB_MCP_SECRETS_FAILBACK_INTERVAL_S", "0", "greater than 0"),
    ],
)
def test_bad_replica_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, needle: str
) -> None:
    """Each bad replica setting is a ConfigError naming its variable and what is wrong."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=needle) as raised:
        load_settings()
    assert raised.value.variable == variable
