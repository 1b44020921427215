"""`AwsSecretsManagerProvider` against a real moto server over HTTP (and a fault proxy before it).

Covers issue 2's "what must be shown": both secrets read, validated and cached; TTL and
rotation; 1,000 concurrent cold readers; one error class per failure; retries of throttling
and 5xx; stale-on-error; single-flight forced refresh.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
import aiohttp
import pytest
from secretswap.metrics import MetricsRegistry
from secretswap.port import AWSPENDING
from secretswap.testing import ManualClock

from kb_mcp.errors import (
    ResourceClosedError,
    SecretAccessDeniedError,
    SecretFormatError,
    SecretNotFoundError,
    SecretsError,
    SecretsUnavailableError,
)
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.schemas import OpenAIKeySecret, PostgresCredentials
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_openai_key, fake_password, postgres_secret_json, watch
from tests.support.fault_proxy import (
    INTERNAL_ERROR,
    SERVICE_UNAVAILABLE,
    THROTTLING,
    Fault,
    FaultProxy,
)

REGION = "us-east-1"
KEY_NAME = "kb-mcp/prod/openai-api-key"
PG_NAME = "kb-mcp/prod/postgres-credentials"


@dataclass
class Seeded:
    """The two secrets as stored in moto, and their first versions."""

    key: str
    password: str
    key_version: str
    pg_version: str


def _pg_json(password: str, **changes: Any) -> str:
    data: dict[str, Any] = {
        "username": "kb_app",
        "password": password,
        "host": "db.internal",
        "port": 5432,
        "database": "kb",
    }
    data.update(changes)
    return postgres_secret_json(**data)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _api_calls(provider: AwsSecretsManagerProvider) -> int:
    return provider.metrics.total("SecretsApiCalls")


@pytest.fixture
async def sm(aws_env: str) -> AsyncIterator[Any]:
    """An aioboto3 Secrets Manager client on moto, for seeding and rotating."""
    async with aioboto3.Session().client(
        "secretsmanager", region_name=REGION, endpoint_url=aws_env
    ) as client:
        yield client


@pytest.fixture
async def seeded(sm: Any) -> Seeded:
    """Both secrets created in moto with fresh fake values."""
    key, password = fake_openai_key(), fake_password()
    created_key = await sm.create_secret(Name=KEY_NAME, SecretString=key)
    created_pg = await sm.create_secret(Name=PG_NAME, SecretString=_pg_json(password))
    return Seeded(key, password, created_key["VersionId"], created_pg["VersionId"])


@pytest.fixture
def proxy(aws_env: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto."""
    with FaultProxy(aws_env) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def clock() -> ManualClock:
    """A fake monotonic clock for the provider's cache."""
    return ManualClock()


@pytest.fixture
async def provider(aws_env: str, clock: ManualClock) -> AsyncIterator[AwsSecretsManagerProvider]:
    """A provider on moto (TTL 300 s on the fake clock)."""
    async with AwsSecretsManagerProvider(
        region=REGION, endpoint_url=aws_env, cache_ttl_s=300, clock=clock
    ) as p:
        yield p


@pytest.fixture
async def proxied(
    proxy: FaultProxy, clock: ManualClock
) -> AsyncIterator[AwsSecretsManagerProvider]:
    """A provider reading through the fault proxy (TTL 300 s on the fake clock)."""
    async with AwsSecretsManagerProvider(
        region=REGION, endpoint_url=proxy.endpoint_url, cache_ttl_s=300, clock=clock
    ) as p:
        yield p


# -- reading and caching --------------------------------------------------------------


async def test_both_secrets_read_validated_and_cached(
    provider: AwsSecretsManagerProvider, seeded: Seeded
) -> None:
    """Both secrets parse into their models with their VersionIds; a second read is free."""
    key = await provider.get_secret_json(KEY_NAME, OpenAIKeySecret)
    pg = await provider.get_secret_json(PG_NAME, PostgresCredentials)
    assert key.value.api_key.get_secret_value() == seeded.key
    assert pg.value.password.get_secret_value() == seeded.password
    assert pg.value.port == 5432
    assert (key.version_id, pg.version_id) == (seeded.key_version, seeded.pg_version)
    assert _api_calls(provider) == 2
    again = await provider.get_secret_json(PG_NAME, PostgresCredentials)
    await provider.get_secret(KEY_NAME)
    assert again is pg  # the same LoadedSecret while the version is unchanged
    assert _api_calls(provider) == 2
    assert provider.metrics.total("CacheHits") == 2


async def test_one_call_after_ttl_and_new_version_seen(
    provider: AwsSecretsManagerProvider, seeded: Seeded, sm: Any, clock: ManualClock
) -> None:
    """Within the TTL no call; at the TTL one call; a put_secret_value shows up then."""
    await provider.get_secret(KEY_NAME)
    new_key = fake_openai_key()
    put = await sm.put_secret_value(SecretId=KEY_NAME, SecretString=new_key)
    clock.advance(299)
    assert (await provider.get_secret(KEY_NAME)).version_id == seeded.key_version
    assert _api_calls(provider) == 1
    clock.advance(1)
    loaded = await provider.get_secret_json(KEY_NAME, OpenAIKeySecret)
    assert loaded.version_id == put["VersionId"] != seeded.key_version
    assert loaded.value.api_key.get_secret_value() == new_key
    assert _api_calls(provider) == 2


async def test_refresh_sees_new_version_at_once(
    provider: AwsSecretsManagerProvider, seeded: Seeded, sm: Any
) -> None:
    """`refresh` bypasses the TTL: a rotated password is served right away."""
    await provider.get_secret_json(PG_NAME, PostgresCredentials)
    password = fake_password()
    put = await sm.put_secret_value(SecretId=PG_NAME, SecretString=_pg_json(password))
    refreshed = await provider.refresh(PG_NAME)
    assert refreshed.version_id == put["VersionId"]
    loaded = await provider.get_secret_json(PG_NAME, PostgresCredentials)
    assert loaded.value.password.get_secret_value() == password
    assert loaded.version is refreshed
    provider.invalidate(PG_NAME)
    reread = await provider.get_secret_json(PG_NAME, PostgresCredentials)
    assert reread is not loaded
    assert reread.version_id == put["VersionId"]
    assert [s.version_id for s in provider.status() if s.name == PG_NAME] == [put["VersionId"]]


async def test_thousand_cold_readers_one_call_per_secret(
    proxied: AwsSecretsManagerProvider, seeded: Seeded, proxy: FaultProxy
) -> None:
    """1,000 concurrent readers of each cold secret (2,000 at once) make one call per secret."""
    keys = [proxied.get_secret_json(KEY_NAME, OpenAIKeySecret) for _ in range(1000)]
    pgs = [proxied.get_secret_json(PG_NAME, PostgresCredentials) for _ in range(1000)]
    key_results, pg_results = await asyncio.gather(asyncio.gather(*keys), asyncio.gather(*pgs))
    assert {r.version_id for r in key_results} == {seeded.key_version}
    assert {r.version_id for r in pg_results} == {seeded.pg_version}
    assert proxy.received("GetSecretValue") == 2
    assert _api_calls(proxied) == 2


async def test_stage_reads_are_uncached(
    provider: AwsSecretsManagerProvider, seeded: Seeded
) -> None:
    """`get_secret_stage` always calls; a missing AWSPENDING is SecretNotFoundError."""
    await provider.get_secret_stage(KEY_NAME, "AWSCURRENT")
    await provider.get_secret_stage(KEY_NAME, "AWSCURRENT")
    assert _api_calls(provider) == 2
    with pytest.raises(SecretNotFoundError):
        await provider.get_secret_stage(KEY_NAME, AWSPENDING)


async def test_closed_provider_refuses_reads(aws_env: str, seeded: Seeded) -> None:
    """After `aclose()` a read raises ResourceClosedError."""
    provider = AwsSecretsManagerProvider(region=REGION, endpoint_url=aws_env)
    await provider.get_secret(KEY_NAME)
    await provider.aclose()
    await provider.aclose()
    with pytest.raises(ResourceClosedError):
        await provider.get_secret(PG_NAME)


# -- one error class per failure --------------------------------------------------------


def _assert_names_secret_not_value(error: SecretsError, name: str, *values: str) -> None:
    assert error.secret_name == name
    assert name in str(error)
    assert REGION in str(error)
    assert error.hint
    for value in values:
        for text in (str(error), repr(error), error.hint):
            assert value not in text


async def test_not_found(provider: AwsSecretsManagerProvider) -> None:
    """A missing secret is SecretNotFoundError in AWS's terms, with a hint, not retried."""
    with pytest.raises(SecretNotFoundError) as info:
        await provider.get_secret_json(PG_NAME, PostgresCredentials)
    _assert_names_secret_not_value(info.value, PG_NAME)
    assert info.value.aws_error == "ResourceNotFoundException"
    assert "ResourceNotFoundException" in str(info.value)
    assert _api_calls(provider) == 1


@pytest.mark.parametrize(
    ("name", "model", "raw_for", "problem"),
    [
        (PG_NAME, PostgresCredentials, lambda pw: '{"username": "kb", "password": "' + pw,
         "is not valid json"),
        (PG_NAME, PostgresCredentials,
         lambda pw: json.dumps({k: v for k, v in json.loads(_pg_json(pw)).items() if k != "host"}),
         "host: field required"),
        (PG_NAME, PostgresCredentials, lambda pw: _pg_json(pw, port="5432"),
         "port: input should be a valid integer"),
        (KEY_NAME, OpenAIKeySecret, lambda pw: "sk-" + pw[:10], "at least 20 characters"),
    ],
    ids=["malformed-json", "missing-key", "port-as-string", "too-short-key"],
)  # fmt: skip
async def test_malformed_values(
    provider: AwsSecretsManagerProvider,
    sm: Any,
    name: str,
    model: type[OpenAIKeySecret | PostgresCredentials],
    raw_for: Any,
    problem: str,
) -> None:
    """Bad JSON, a missing key, a string port, a short key: SecretFormatError saying which."""
    password = fake_password()
    raw: str = raw_for(password)
    watch(raw, raw[3:])
    await sm.create_secret(Name=name, SecretString=raw)
    with pytest.raises(SecretFormatError) as info:
        await provider.get_secret_json(name, model)
    _assert_names_secret_not_value(info.value, name, raw, password, raw[3:])
    assert problem in str(info.value)
    assert model.__name__ in info.value.hint


async def test_unreachable_endpoint(aws_env: str) -> None:
    """A closed port is SecretsUnavailableError naming the endpoint, after the retry budget."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    async with AwsSecretsManagerProvider(
        region=REGION, endpoint_url=endpoint, retry_budget_s=0.3, connect_timeout_s=0.5
    ) as provider:
        with pytest.raises(SecretsUnavailableError) as info:
            await provider.get_secret(KEY_NAME)
    _assert_names_secret_not_value(info.value, KEY_NAME)
    assert "unreachable" in str(info.value)
    assert endpoint in str(info.value)
    assert "AWS_ENDPOINT_URL" in info.value.hint
    assert _api_calls(provider) >= 1


async def _reset_auth(endpoint: str, count: str) -> None:
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.post(f"{endpoint}/moto-api/reset-auth", data=count.encode()) as response,
    ):
        assert response.status == 200


@asynccontextmanager
async def _iam_enforced(endpoint: str) -> AsyncIterator[None]:
    """moto checks IAM on every call inside the block (its `reset-auth` endpoint)."""
    await _reset_auth(endpoint, "0")
    try:
        yield
    finally:
        await _reset_auth(endpoint, "inf")


async def _user_denied_get_secret_value(endpoint: str) -> aioboto3.Session:
    """An IAM user allowed every Secrets Manager action except GetSecretValue."""
    user = "kb-reader-" + secrets.token_hex(4)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
        ],
    }
    async with aioboto3.Session().client("iam", region_name=REGION, endpoint_url=endpoint) as iam:
        await iam.create_user(UserName=user)
        await iam.put_user_policy(
            UserName=user, PolicyName="deny-read", PolicyDocument=json.dumps(policy)
        )
        key = (await iam.create_access_key(UserName=user))["AccessKey"]
    watch(key["SecretAccessKey"])
    return aioboto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=REGION,
    )


async def test_access_denied_by_iam_policy(aws_env: str, seeded: Seeded) -> None:
    """An IAM deny on GetSecretValue (moto enforcing IAM) is SecretAccessDeniedError."""
    session = await _user_denied_get_secret_value(aws_env)
    async with _iam_enforced(aws_env):
        async with session.client("secretsmanager", endpoint_url=aws_env) as client:
            described = await client.describe_secret(SecretId=PG_NAME)  # allowed: keys are valid
        assert described["Name"] == PG_NAME
        async with AwsSecretsManagerProvider(
            region=REGION, endpoint_url=aws_env, session=session
        ) as provider:
            with pytest.raises(SecretAccessDeniedError) as info:
                await provider.get_secret_json(PG_NAME, PostgresCredentials)
            assert _api_calls(provider) == 1
    _assert_names_secret_not_value(info.value, PG_NAME, seeded.password)
    assert info.value.aws_error == "AccessDeniedException"
    assert "secretsmanager:GetSecretValue" in info.value.hint


# -- retries, budget, stale-on-error ---------------------------------------------------------


@pytest.mark.parametrize("fault", [THROTTLING, INTERNAL_ERROR, SERVICE_UNAVAILABLE])
async def test_throttling_and_5xx_are_retried_then_succeed(
    proxied: AwsSecretsManagerProvider,
    proxy: FaultProxy,
    seeded: Seeded,
    fault: Fault,
    captured_logs: CapturedLogs,
) -> None:
    """Two throttled or 5xx answers are retried with backoff; the third attempt succeeds."""
    proxy.fail_next(2, fault)
    loaded = await proxied.get_secret_json(KEY_NAME, OpenAIKeySecret)
    assert loaded.value.api_key.get_secret_value() == seeded.key
    assert (proxy.received("GetSecretValue"), proxy.failed("GetSecretValue")) == (3, 2)
    assert _api_calls(proxied) == 3
    retries = captured_logs.events("secrets.retrying")
    assert len(retries) == 2
    assert all(r["error"] == fault.error_type for r in retries)


async def test_failures_beyond_the_retry_budget_are_unavailable(
    proxy: FaultProxy, seeded: Seeded
) -> None:
    """Throttling that outlasts the retry budget ends in SecretsUnavailableError."""
    proxy.fail_all(THROTTLING)
    async with AwsSecretsManagerProvider(
        region=REGION, endpoint_url=proxy.endpoint_url, retry_budget_s=0.5
    ) as provider:
        with pytest.raises(SecretsUnavailableError) as info:
            await provider.get_secret(KEY_NAME)
        attempts = _api_calls(provider)
    _assert_names_secret_not_value(info.value, KEY_NAME, seeded.key)
    assert info.value.aws_error == "ThrottlingException"
    assert attempts >= 2
    assert proxy.received("GetSecretValue") == proxy.failed("GetSecretValue") == attempts


async def test_refresh_failure_keeps_the_old_value(
    proxy: FaultProxy, seeded: Seeded, clock: ManualClock, captured_logs: CapturedLogs
) -> None:
    """Stale-on-error: an expired entry whose refresh fails keeps serving, reported stale."""
    async with AwsSecretsManagerProvider(
        region=REGION,
        endpoint_url=proxy.endpoint_url,
        cache_ttl_s=300,
        clock=clock,
        retry_budget_s=0,
    ) as provider:
        first = await provider.get_secret_json(PG_NAME, PostgresCredentials)
        proxy.fail_all(INTERNAL_ERROR)
        clock.advance(300)
        again = await provider.get_secret_json(PG_NAME, PostgresCredentials)
        assert again.value is first.value
        (status,) = provider.status()
        assert status.stale
        assert status.version_id == seeded.pg_version
        assert status.last_error == "SecretsUnavailableError"
        assert provider.metrics.total("RefreshErrors") == 1
        (warning,) = captured_logs.events("secret.refresh_failed")
        assert warning["level"] == "warning"
        assert warning["secret"] == PG_NAME
        assert warning["serving_version"] == seeded.pg_version
        # The service recovers: the next attempt after the error back-off clears staleness.
        proxy.clear()
        clock.advance(30)
        await provider.get_secret(PG_NAME)
        assert not provider.status()[0].stale


async def test_forced_refresh_is_single_flight(
    proxied: AwsSecretsManagerProvider,
    proxy: FaultProxy,
    seeded: Seeded,
    sm: Any,
) -> None:
    """100 concurrent `refresh(seen_version=old)` make one call; a late caller makes none."""
    old = await proxied.get_secret(PG_NAME)
    put = await sm.put_secret_value(SecretId=PG_NAME, SecretString=_pg_json(fake_password()))
    proxy.reset_counts()
    results = await asyncio.gather(
        *(proxied.refresh(PG_NAME, seen_version=old.version_id) for _ in range(100))
    )
    assert {r.version_id for r in results} == {put["VersionId"]}
    assert proxy.received("GetSecretValue") == 1
    late = await proxied.refresh(PG_NAME, seen_version=old.version_id)
    assert late.version_id == put["VersionId"]
    assert proxy.received("GetSecretValue") == 1


async def test_metrics_registry_can_be_shared(aws_env: str, seeded: Seeded) -> None:
    """A registry passed in collects the provider's counters (the supervisor owns one)."""
    metrics = MetricsRegistry()
    async with AwsSecretsManagerProvider(
        region=REGION, endpoint_url=aws_env, metrics=metrics
    ) as provider:
        await provider.get_secret(KEY_NAME)
        await provider.get_secret(KEY_NAME)
    assert provider.metrics is metrics
    assert (metrics.total("SecretsApiCalls"), metrics.total("CacheHits")) == (1, 1)
