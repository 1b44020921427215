"""Replica-region failover of `AwsSecretsManagerProvider`, against two real moto servers.

The primary region (us-east-1) is a moto server the tests kill and revive; the replica
(us-west-2) is another, holding the same secrets with the same VersionIds. Faults of the
other classes come from a fault proxy in front of the primary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from secretswap.aws.regions import Region
from secretswap.metrics import MetricsRegistry
from secretswap.testing import ManualClock

from kb_mcp.config import load_settings
from kb_mcp.errors import SecretAccessDeniedError, SecretNotFoundError, SecretsUnavailableError
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.factory import open_secrets_provider
from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_openai_key
from tests.support.fault_proxy import ACCESS_DENIED, THROTTLING, FaultProxy
from tests.support.regions import PRIMARY, REPLICA, TwoRegions, open_two_regions

NAME = "kb-mcp/prod/openai-api-key"
FAILBACK_S = 30.0
TTL_S = 300.0


@pytest.fixture
async def regions(aws_env: str) -> AsyncIterator[TwoRegions]:
    """Two regions, fake credentials from `aws_env`."""
    async with open_two_regions() as two:
        yield two


def _provider(
    regions: TwoRegions,
    *,
    endpoint_url: str | None = None,
    clock: ManualClock | None = None,
    metrics: MetricsRegistry | None = None,
    retry_budget_s: float = 0.3,
) -> AwsSecretsManagerProvider:
    return AwsSecretsManagerProvider(
        region=PRIMARY,
        endpoint_url=endpoint_url or regions.primary_endpoint_url,
        replicas=[Region(REPLICA, regions.replica_endpoint_url)],
        failback_interval_s=FAILBACK_S,
        cache_ttl_s=TTL_S,
        retry_budget_s=retry_budget_s,
        metrics=metrics,
        clock=clock or ManualClock(),
    )


async def test_primary_down_reads_the_same_version_from_the_replica(
    regions: TwoRegions, captured_logs: CapturedLogs
) -> None:
    """The primary unreachable: the replica's value, same VersionId, region us-west-2."""
    key = fake_openai_key()
    version = await regions.create(NAME, key)
    await regions.kill_primary()
    metrics = MetricsRegistry()
    async with _provider(regions, metrics=metrics) as provider:
        loaded = await provider.get_secret_json(NAME, OpenAIKeySecret)
        assert loaded.value.api_key.get_secret_value() == key
        assert loaded.version.version_id == version
        assert loaded.version.region == REPLICA
        (status,) = provider.status()
        assert (status.region, status.stale) == (REPLICA, False)
    events = captured_logs.records
    assert metrics.total("SecretsFailovers") == 1
    assert metrics.total("SecretsFailbacks") == 0
    (failover,) = [e for e in events if e["event"] == "secrets.region_failover"]
    assert (failover["region"], failover["from_region"]) == (REPLICA, PRIMARY)
    assert failover["error"] == "EndpointConnectionError"


async def test_reads_go_back_to_the_primary_once_it_answers(
    regions: TwoRegions, captured_logs: CapturedLogs
) -> None:
    """Failed over: reads stay on the replica until the interval passes, then return."""
    await regions.create(NAME, fake_openai_key())
    clock = ManualClock()
    metrics = MetricsRegistry()
    await regions.kill_primary()
    async with _provider(regions, clock=clock, metrics=metrics) as provider:
        assert (await provider.refresh(NAME)).region == REPLICA
        await regions.revive_primary()
        # Within the failback interval no read probes the primary.
        clock.advance(FAILBACK_S / 2)
        assert (await provider.refresh(NAME)).region == REPLICA
        clock.advance(FAILBACK_S)
        assert (await provider.refresh(NAME)).region == PRIMARY
        assert (await provider.refresh(NAME)).region == PRIMARY
        assert provider.status()[0].region == PRIMARY
    events = captured_logs.records
    assert (metrics.total("SecretsFailovers"), metrics.total("SecretsFailbacks")) == (1, 1)
    (returned,) = [e for e in events if e["event"] == "secrets.region_returned"]
    assert (returned["region"], returned["from_region"]) == (PRIMARY, REPLICA)


async def test_a_probe_of_a_primary_still_down_keeps_reads_on_the_replica(
    regions: TwoRegions,
) -> None:
    """The interval passes with the primary still down: one short probe, the replica serves."""
    await regions.create(NAME, fake_openai_key())
    clock = ManualClock()
    metrics = MetricsRegistry()
    await regions.kill_primary()
    async with _provider(regions, clock=clock, metrics=metrics) as provider:
        await provider.refresh(NAME)
        calls = metrics.total("SecretsApiCalls")
        clock.advance(FAILBACK_S * 2)
        assert (await provider.refresh(NAME)).region == REPLICA
        # One probe of the primary (one attempt, no retries), one read of the replica.
        assert metrics.total("SecretsApiCalls") - calls == 2
    assert (metrics.total("SecretsFailovers"), metrics.total("SecretsFailbacks")) == (1, 0)


async def test_not_found_in_the_primary_is_raised_not_failed_over(regions: TwoRegions) -> None:
    """A secret missing in the primary (present in the replica) is a real error."""
    await regions.create(NAME, fake_openai_key(), regions=(REPLICA,))
    metrics = MetricsRegistry()
    async with _provider(regions, metrics=metrics) as provider:
        with pytest.raises(SecretNotFoundError) as raised:
            await provider.get_secret(NAME)
    assert raised.value.region == PRIMARY
    assert metrics.total("SecretsFailovers") == 0


async def test_access_denied_in_the_primary_is_raised_not_failed_over(regions: TwoRegions) -> None:
    """A denied read in the primary is a real error: the replica is not asked."""
    await regions.create(NAME, fake_openai_key())
    metrics = MetricsRegistry()
    with FaultProxy(regions.primary_endpoint_url) as proxy:
        proxy.fail_all(ACCESS_DENIED)
        async with _provider(regions, endpoint_url=proxy.endpoint_url, metrics=metrics) as provider:
            with pytest.raises(SecretAccessDeniedError):
                await provider.get_secret(NAME)
    assert metrics.total("SecretsFailovers") == 0


async def test_throttling_past_the_retry_budget_fails_over(regions: TwoRegions) -> None:
    """The primary throttling every call: retried within the budget, then the replica."""
    await regions.create(NAME, fake_openai_key())
    metrics = MetricsRegistry()
    with FaultProxy(regions.primary_endpoint_url) as proxy:
        proxy.fail_all(THROTTLING)
        # A budget above the first backoff's cap (0.4 s): at least one retry, then failover.
        async with _provider(
            regions, endpoint_url=proxy.endpoint_url, metrics=metrics, retry_budget_s=1.0
        ) as provider:
            assert (await provider.get_secret(NAME)).region == REPLICA
        assert proxy.failed() >= 2
    assert metrics.total("SecretsFailovers") == 1


async def test_every_region_down_raises_the_primary_error(regions: TwoRegions) -> None:
    """Primary and replica both unreachable: SecretsUnavailableError naming the primary."""
    await regions.create(NAME, fake_openai_key())
    await regions.kill_primary()
    await regions.replica_down()
    async with _provider(regions) as provider:
        with pytest.raises(SecretsUnavailableError) as raised:
            await provider.get_secret(NAME)
    assert raised.value.region == PRIMARY


async def test_settings_build_a_provider_that_boots_in_failover(regions: TwoRegions) -> None:
    """KB_MCP_SECRETS_REPLICA_REGIONS and the per-region endpoint: boot with the primary down."""
    names = ("kb-mcp/prod/openai-api-key", "kb-mcp/prod/postgres-credentials")
    for name in names:
        await regions.create(name, fake_openai_key())
    await regions.kill_primary()
    settings = load_settings(
        env="production", secrets_retry_budget_s=0.3, **regions.settings_overrides()
    )
    provider = await open_secrets_provider(settings, MetricsRegistry())
    try:
        assert {s.name: s.region for s in provider.status()} == dict.fromkeys(names, REPLICA)
    finally:
        await provider.aclose()
