"""Redaction: secret-looking keys at any depth, loaded values anywhere, every logger, no reprs."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from secretswap.port import LoadedSecret, SecretVersion

from kb_mcp.observability.redaction import (
    DEPTH_LIMIT_MARKER,
    MASK,
    SecretValueRegistry,
    is_sensitive_key,
    redact_event,
    redact_text,
    secret_registry,
)
from kb_mcp.secrets.schemas import OpenAIKeySecret, PostgresCredentials
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_openai_key, fake_password, postgres_secret_json, watch

log = structlog.get_logger(__name__)


def _unregistered(prefix: str) -> str:
    """A value no registry knows (so only key-based masking can hide it)."""
    value = prefix + secrets.token_hex(10)
    watch(value)
    return value


@pytest.mark.parametrize(
    "key",
    ["password", "DB_PASSWORD", "api_key", "apiKey", "x-api-key", "client_secret", "token",
     "refresh_token", "Authorization", "dsn", "aws_credentials", "private_key", "cookie"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    """Keys that hold secrets are recognised whatever their case or decoration."""
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["secret", "secret_name", "version_id", "event", "host", "username", "error"]
)
def test_descriptive_keys_are_not_masked(key: str) -> None:
    """Keys that only name or describe a secret keep their values (they are useful)."""
    assert not is_sensitive_key(key)


def test_key_based_masking_at_depth() -> None:
    """Values under sensitive keys are masked in nested dicts and lists; others are kept."""
    password, token = _unregistered("pw-"), _unregistered("tok-")
    event: dict[str, Any] = {
        "event": "db.connect",
        "secret_name": "kb-mcp/prod/postgres-credentials",
        "config": {"db": {"user": "kb", "password": password, "port": 5432}},
        "requests": [{"headers": {"Authorization": token}}, [{"db_password": password}]],
        "empty_password": "",
    }
    redacted = redact_event(event, SecretValueRegistry())
    assert redacted["config"] == {"db": {"user": "kb", "password": MASK, "port": 5432}}
    assert redacted["requests"][0] == {"headers": {"Authorization": MASK}}
    assert redacted["secret_name"] == "kb-mcp/prod/postgres-credentials"
    assert redacted["empty_password"] == ""
    assert password not in json.dumps(redacted)


def test_nesting_past_the_depth_limit_is_not_emitted() -> None:
    """A sensitive key nested deeper than the redactor walks is dropped, not printed."""
    password = _unregistered("pw-deep-")
    nested: dict[str, Any] = {"password": password}
    for _ in range(40):
        nested = {"level": nested}
    redacted = redact_event({"event": "x", "data": nested}, SecretValueRegistry())
    text = json.dumps(redacted)
    assert password not in text
    assert DEPTH_LIMIT_MARKER in text


def test_registered_values_masked_anywhere() -> None:
    """A loaded value is masked inside any string, at any depth, and inside other objects."""
    registry = SecretValueRegistry()
    key = fake_openai_key()
    registry.register(key, "short")
    event: dict[str, Any] = {
        "event": f"calling with {key}",
        "detail": [{"note": f"prefix{key}suffix"}],
        "obj": ValueError(f"bad key {key}"),
        "short": "short",
    }
    text = json.dumps(redact_event(event, registry))
    assert key not in text
    assert "short" in text  # under six characters: never registered, it would mask noise
    assert registry.values() == frozenset({key})


def test_longest_value_masked_whole() -> None:
    """When one registered value contains another, the longer one is masked in full."""
    registry = SecretValueRegistry()
    inner = fake_password()
    outer = inner + "-and-more"
    watch(outer)
    registry.register(inner, outer)
    assert registry.mask(f"[{outer}]") == f"[{MASK}]"


def test_secret_shapes_masked_even_unregistered() -> None:
    """OpenAI keys, AWS access key ids, DSN passwords and bearer tokens are masked by shape."""
    key = "sk-proj-" + secrets.token_urlsafe(24)
    akid = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    password = _unregistered("pw")
    token = secrets.token_urlsafe(20)
    watch(key, akid, token)
    dsn = "postgresql://" + ":".join(("kb", password)) + "@db:5432/kb"
    text = redact_text(f"k={key} id={akid} url={dsn} auth=Bearer {token}", SecretValueRegistry())
    for value in (key, akid, password, token):
        assert value not in text
    assert "postgresql://kb:***@db:5432/kb" in text


def test_json_secret_registration_masks_the_password() -> None:
    """Registering a PostgreSQL secret's JSON registers its password field on its own."""
    registry = SecretValueRegistry()
    password = fake_password()
    raw = postgres_secret_json(
        username="kb_user", password=password, host="db.internal", port=5432, database="kb"
    )
    registry.register_secret_string(raw)
    assert password in registry.values()
    assert "kb_user" not in registry.values()
    assert registry.mask(f"login failed with {password}") == f"login failed with {MASK}"


def test_exception_text_is_masked(captured_logs: CapturedLogs) -> None:
    """`log.exception` of an error whose message holds a loaded value masks it in the trace."""
    password = fake_password()
    secret_registry().register(password)
    try:
        raise ConnectionError(f"authentication failed for password {password}")
    except ConnectionError:
        log.exception("db.connect_failed", host="db.internal")
    (line,) = captured_logs.lines_of("db.connect_failed")
    assert password not in line
    assert "authentication failed for password ***" in line
    assert "ConnectionError" in line


def _fail_with_secret_in_locals(password: str) -> None:
    blob = "x" * 70 + password  # truncated to 80 characters if locals were rendered
    raise RuntimeError(f"failed after {len(blob)} characters")


def test_exception_logs_carry_no_frame_locals(captured_logs: CapturedLogs) -> None:
    """Tracebacks show no frame locals: a truncated secret would escape value masking."""
    password = fake_password()
    secret_registry().register(password)
    try:
        _fail_with_secret_in_locals(password)
    except RuntimeError:
        log.exception("work.failed")
    (line,) = captured_logs.lines_of("work.failed")
    assert password[:10] not in line
    assert "_fail_with_secret_in_locals" in line


def test_stdlib_loggers_are_redacted(captured_logs: CapturedLogs) -> None:
    """Lines from standard-library loggers (asyncpg, botocore) go through the same masking."""
    password = fake_password()
    secret_registry().register(password)
    logging.getLogger("asyncpg").warning("connection to %s refused for password %s", "db", password)
    logging.getLogger("asyncpg").warning("pool state", extra={"password": "hidden-by-key"})
    line = captured_logs.lines[-2]
    assert '"logger": "asyncpg"' in line
    assert password not in line
    assert "refused for password ***" in line


def test_values_with_json_escapes_are_masked(captured_logs: CapturedLogs) -> None:
    """A value containing quotes or backslashes is masked before JSON rendering escapes it."""
    password = 'pw"\\' + secrets.token_hex(8)
    watch(password, json.dumps(password)[1:-1])
    secret_registry().register(password)
    log.info("db.note", detail=f"password is {password}")
    (line,) = captured_logs.lines_of("db.note")
    assert password not in line
    assert json.dumps(password)[1:-1] not in line


def test_secret_models_never_show_values() -> None:
    """Repr and str of the secret models, `SecretVersion` and `LoadedSecret` show no value."""
    key, password = fake_openai_key(), fake_password()
    openai = OpenAIKeySecret(api_key=SecretStr(key))
    creds = PostgresCredentials.model_validate(
        {"username": "kb", "password": password, "host": "h", "port": 5432, "database": "kb"}
    )
    version = SecretVersion(
        name="kb-mcp/prod/openai-api-key", value=SecretStr(key), version_id="v1"
    )
    loaded = LoadedSecret(openai, version)
    for obj in (openai, creds, version, loaded, creds.dsn()):
        for text in (repr(obj), str(obj), f"{obj}", f"{obj!r}"):
            assert key not in text
            assert password not in text
    assert "v1" in repr(version)
    assert "kb-mcp/prod/openai-api-key" in repr(version)
