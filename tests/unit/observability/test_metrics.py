"""CloudWatch EMF lines: structure, deltas, dimension sets, and counts after real reads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aioboto3
import pytest
from secretswap import Refresher, SecretWatcher
from secretswap.metrics import MetricsRegistry
from secretswap.port import LoadedSecret

from kb_mcp.errors import RotationError
from kb_mcp.observability.metrics import EmfEmitter, EmfFormatError, parse_emf_line
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.support.fakes import fake_openai_key

FIXED_NOW_S = 1_700_000_000.5


def _emitter(registry: MetricsRegistry, lines: list[str]) -> EmfEmitter:
    return EmfEmitter(
        registry, environment="production", sink=lines.append, clock=lambda: FIXED_NOW_S
    )


def _by_dimensions(lines: list[str]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Parsed lines keyed by their dimension keys beyond Service/Environment."""
    parsed = [parse_emf_line(line) for line in lines]
    keyed = {}
    for doc in parsed:
        keys = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
        extra = tuple(f"{k}={doc[k]}" for k in keys if k not in {"Service", "Environment"})
        keyed[extra] = doc
    assert len(keyed) == len(parsed), "two lines share a dimension set"
    return keyed


def test_line_is_valid_emf_with_service_and_environment() -> None:
    """A flushed line declares namespace, dimensions and units, with values at top level."""
    registry = MetricsRegistry()
    registry.counter("CacheHits").value += 3
    lines: list[str] = []
    written = _emitter(registry, lines).flush()
    assert written == lines
    assert len(lines) == 1
    doc = parse_emf_line(lines[0])
    assert doc["_aws"]["Timestamp"] == int(FIXED_NOW_S * 1000)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "KbMcp"
    assert directive["Dimensions"] == [["Service", "Environment"]]
    assert directive["Metrics"] == [{"Name": "CacheHits", "Unit": "Count"}]
    assert (doc["Service"], doc["Environment"], doc["CacheHits"]) == ("kb-mcp", "production", 3)


def test_counters_are_deltas_and_idle_flush_writes_nothing() -> None:
    """Each flush carries what happened since the last one; nothing new means no line."""
    registry = MetricsRegistry()
    hits = registry.counter("CacheHits")
    lines: list[str] = []
    emitter = _emitter(registry, lines)
    hits.value += 5
    assert parse_emf_line(emitter.flush()[0])["CacheHits"] == 5
    assert emitter.flush() == []
    hits.value += 2
    assert parse_emf_line(emitter.flush()[0])["CacheHits"] == 2


def test_extra_dimensions_get_their_own_line() -> None:
    """SecretsApiCalls by Operation and SecretAgeDays by SecretName are separate lines."""
    registry = MetricsRegistry()
    registry.counter("CacheMisses").value += 1
    registry.counter("SecretsApiCalls", Operation="GetSecretValue").value += 4
    registry.gauge("SecretAgeDays", SecretName="kb-mcp/prod/openai-api-key").set(12.5)
    lines: list[str] = []
    keyed = _by_dimensions(_emitter(registry, lines).flush())
    assert keyed[()]["CacheMisses"] == 1
    api = keyed[("Operation=GetSecretValue",)]
    assert api["SecretsApiCalls"] == 4
    assert api["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Service", "Environment", "Operation"],
        ["Service", "Environment"],  # rolled up for alarms on the base dimensions
    ]
    age = keyed[("SecretName=kb-mcp/prod/openai-api-key",)]
    assert age["SecretAgeDays"] == 12.5
    assert age["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "SecretAgeDays", "Unit": "None"}
    ]


def test_gauges_are_written_when_set_or_changed() -> None:
    """A gauge appears on its first flush and again only when its value changes."""
    registry = MetricsRegistry()
    gauge = registry.gauge("SecretAgeDays", SecretName="s")
    lines: list[str] = []
    emitter = _emitter(registry, lines)
    gauge.set(1.0)
    assert len(emitter.flush()) == 1
    assert emitter.flush() == []
    gauge.set(2.0)
    assert parse_emf_line(emitter.flush()[0])["SecretAgeDays"] == 2.0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("_aws"),
        lambda d: d["_aws"].update(Timestamp="soon"),
        lambda d: d.pop("CacheHits"),
        lambda d: d.update(Service=7),
    ],
)
def test_parse_rejects_broken_lines(mutate: Any) -> None:
    """The validator catches a missing block, a bad timestamp, metric or dimension."""
    registry = MetricsRegistry()
    registry.counter("CacheHits").value += 1
    lines: list[str] = []
    doc = json.loads(_emitter(registry, lines).flush()[0])
    mutate(doc)
    with pytest.raises(EmfFormatError):
        parse_emf_line(json.dumps(doc))


async def test_run_flushes_on_interval_and_at_stop() -> None:
    """The loop writes at its interval and once more when stopped."""
    registry = MetricsRegistry()
    counter = registry.counter("RefreshErrors")
    lines: list[str] = []
    written = asyncio.Event()

    def sink(line: str) -> None:
        lines.append(line)
        written.set()

    emitter = EmfEmitter(registry, environment="production", sink=sink)
    stop = asyncio.Event()
    task = asyncio.create_task(emitter.run(stop, 0.01))
    counter.value += 1
    await asyncio.wait_for(written.wait(), 5)
    counter.value += 2
    stop.set()
    await task
    assert sum(parse_emf_line(line)["RefreshErrors"] for line in lines) == 3


class _Accepts:
    async def apply(self, loaded: LoadedSecret[Any]) -> bool:
        return True


class _Refuses:
    async def apply(self, loaded: LoadedSecret[Any]) -> bool:
        raise RotationError("refused in test", secret_name=loaded.version.name, version_id="v")


async def test_counts_after_reads_and_rotations_against_moto(aws_env: str) -> None:
    """Real reads, refreshes and rotations through moto produce the expected EMF counts."""
    names = ("kb-mcp/prod/openai-api-key", "kb-mcp/prod/other-key")
    session = aioboto3.Session()
    async with session.client(
        "secretsmanager", region_name="us-east-1", endpoint_url=aws_env
    ) as client:
        for name in names:
            await client.create_secret(Name=name, SecretString=fake_openai_key())
        registry = MetricsRegistry()
        lines: list[str] = []
        emitter = _emitter(registry, lines)
        async with AwsSecretsManagerProvider(
            region="us-east-1", endpoint_url=aws_env, metrics=registry, retry_budget_s=0.5
        ) as provider:
            for _ in range(3):
                for name in names:
                    await provider.get_secret(name)
            first = _by_dimensions(emitter.flush())
            assert first[()]["CacheHits"] == 4
            assert first[()]["CacheMisses"] == 2
            assert first[("Operation=GetSecretValue",)]["SecretsApiCalls"] == 2

            refresher = Refresher(provider, interval_s=300, metrics=registry)
            watchers: tuple[SecretWatcher, ...] = (_Accepts(), _Refuses())
            for name, watcher in zip(names, watchers, strict=True):
                refresher.watch(await provider.get_secret_json(name, OpenAIKeySecret), watcher)
            for name in names:
                await client.put_secret_value(SecretId=name, SecretString=fake_openai_key())
            await refresher.refresh_all()
            await client.delete_secret(SecretId=names[1], ForceDeleteWithoutRecovery=True)
            assert not await refresher.refresh_one(names[1])
            second = _by_dimensions(emitter.flush())
            assert second[()]["CacheHits"] == 2  # the two reads for watch()
            assert second[()]["CacheMisses"] == 0
            assert second[()]["RotationsDetected"] == 2
            assert second[()]["RotationFailures"] == 1
            assert second[()]["RefreshErrors"] == 1
            assert second[("Operation=GetSecretValue",)]["SecretsApiCalls"] == 3
            assert emitter.flush() == []
