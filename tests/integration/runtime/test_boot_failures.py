"""`kb-mcp serve` as a real subprocess: every startup failure exits 1, names the secret,
says what to check, and prints no secret value."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from tests.support.fakes import WATCHED, fake_password
from tests.support.fault_proxy import ACCESS_DENIED, FaultProxy
from tests.support.processes import run_kb_mcp
from tests.support.runtime_env import RuntimeEnv


async def _serve(env: RuntimeEnv, endpoint: str | None = None, **extra: str) -> tuple[int, str]:
    result = await asyncio.to_thread(
        run_kb_mcp,
        "serve",
        "--transport",
        "http",
        "--port",
        "0",
        env=env.process_env(endpoint_url=endpoint, **extra),
    )
    output = result.stderr + result.stdout
    assert not [v for v in WATCHED if v in output], "a secret value was printed"
    return result.returncode, output


def _startup_event(output: str) -> dict[str, object]:
    for line in output.splitlines():
        if line.startswith("{") and '"startup.failed"' in line:
            event: dict[str, object] = json.loads(line)
            return event
    raise AssertionError(f"no startup.failed event in:\n{output}")


async def test_missing_secret_exits_1_naming_it(env: RuntimeEnv) -> None:
    """ResourceNotFoundException: exit 1, the secret named, names and region to check."""
    await env.client.delete_secret(SecretId=env.openai_secret, ForceDeleteWithoutRecovery=True)
    code, output = await _serve(env)
    assert code == 1
    event = _startup_event(output)
    assert event["secret"] == env.openai_secret
    assert event["aws_error"] == "ResourceNotFoundException"
    assert "kb-mcp: startup failed: secret kb-mcp/prod/openai-api-key not found" in output
    assert "kb-mcp: hint:" in output


async def test_access_denied_exits_1(env: RuntimeEnv) -> None:
    """AccessDeniedException: exit 1, the IAM policy named as the thing to check."""
    with FaultProxy(env.endpoint_url) as proxy:
        proxy.fail_all(ACCESS_DENIED)
        code, output = await _serve(env, proxy.endpoint_url)
    assert code == 1
    assert _startup_event(output)["aws_error"] == "AccessDeniedException"
    assert "IAM policy" in output


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"username": "kb", "password": ', "is not valid json"),
        (None, "port: input should be a valid integer"),
    ],
)
async def test_malformed_postgres_secret_exits_1(
    env: RuntimeEnv, value: str | None, expected: str
) -> None:
    """Malformed JSON or a wrong type: exit 1 naming the secret and the bad key, no value."""
    if value is None:
        value = env.postgres_json("a", port="5432")
    await env.put(env.postgres_secret, value)
    code, output = await _serve(env)
    assert code == 1
    assert env.postgres_secret in output
    assert expected in output
    assert _startup_event(output)["error"] == "SecretFormatError"


async def test_unreachable_secrets_manager_exits_1_in_production(env: RuntimeEnv) -> None:
    """A closed port: exit 1 after the bounded retry budget, the endpoint to check named."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, output = await _serve(env, closed)
    assert code == 1
    assert "unreachable" in output
    assert "AWS_ENDPOINT_URL" in output


@pytest.mark.parametrize(
    ("config", "profile", "aws_error", "named"),
    [
        ("[profile kb-other]\nregion = us-east-1\n", "kb-missing", "ProfileNotFound",
         "(ProfileNotFound: profile kb-missing)"),
        ("[default\nregion = us-east-1\n", None, "ConfigParseError",
         "(ConfigParseError: path "),
    ],
)  # fmt: skip
async def test_an_aws_configuration_error_exits_1_at_once(
    env: RuntimeEnv,
    tmp_path: Path,
    config: str,
    profile: str | None,
    aws_error: str,
    named: str,
) -> None:
    """A mistyped AWS_PROFILE or an unparsable AWS config file: exit 1 at the first read,
    naming the secret, the profile or file, and AWS_PROFILE to check; not retried (waiting
    does not change a configuration), no traceback."""
    path = tmp_path / "config"
    path.write_text(config)
    extra = {"AWS_CONFIG_FILE": str(path)} | ({"AWS_PROFILE": profile} if profile else {})
    code, output = await _serve(env, **extra)
    assert code == 1
    event = _startup_event(output)
    assert event["aws_error"] == aws_error
    assert event["secret"] in {env.openai_secret, env.postgres_secret}
    assert named in output
    assert "AWS_PROFILE" in output
    assert '"secrets.retrying"' not in output
    assert "Traceback" not in output


async def test_database_rejecting_credentials_exits_1(env: RuntimeEnv) -> None:
    """Wrong password: exit 1 naming the secret and the sqlstate, no password printed."""
    await env.put(env.postgres_secret, env.postgres_json("a", password=fake_password()))
    code, output = await _serve(env)
    assert code == 1
    assert _startup_event(output)["error"] == "DatabaseAuthError"
    assert "28P01" in output
    assert env.postgres_secret in output
