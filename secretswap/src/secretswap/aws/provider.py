"""`AwsSecretsManagerProvider`: secrets from AWS Secrets Manager via aioboto3.

One long-lived client per provider. Every read names a version stage
(`VersionStage="AWSCURRENT"` by default: moto answers a stage-less read with a stale
value after `update_secret_version_stage`). Unavailability (unreachable endpoint,
timeouts, throttling, 5xx) is retried with exponential backoff and full jitter within a
bounded budget; the SDK's own retries are off so that budget is the only one.

With replica regions, a read the primary cannot serve (the unavailable class only) goes to
the same secret's replica in the next region, and back to the primary once it answers
again (`secretswap.aws.regions`). Each `SecretVersion` names the region it was read from.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol, Self, TypeVar

import aioboto3
from aiobotocore.config import AioConfig
from pydantic import SecretStr

from secretswap._logging import EventLogger
from secretswap.aws.classify import classify_aws_error, is_retryable
from secretswap.aws.regions import Region, RegionFailover
from secretswap.cache import SecretCache
from secretswap.errors import ResourceClosedError, SecretFormatError, SecretsError
from secretswap.metrics import MetricsRegistry
from secretswap.port import AWSCURRENT, CacheEntryStatus, LoadedSecret, SecretVersion
from secretswap.schemas import SecretModel, parse_secret

__all__ = ["AwsSecretsManagerProvider", "SecretSink"]

log = EventLogger(__name__)

M = TypeVar("M", bound=SecretModel)


class SecretSink(Protocol):
    """Told every secret value read (an application's log redaction, for instance)."""

    def register(self, *values: str) -> None:
        """Values of a parsed secret (its `SecretStr` fields)."""
        ...

    def register_secret_string(self, raw: str) -> None:
        """A secret's raw string, as read."""
        ...


class _NoSink:
    def register(self, *values: str) -> None:
        return None

    def register_secret_string(self, raw: str) -> None:
        return None


BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 2.0


class AwsSecretsManagerProvider:
    """Reads secrets from Secrets Manager, caching the current version of each.

    `clock` (default `time.monotonic`) drives the cache's TTL and the failback interval;
    tests inject a fake one. The retry budget always runs on the real monotonic clock.
    `replicas` are the regions holding replicas of the secrets, in failover order.
    `registry` is told every value read (an application's log redaction registers them).
    `not_found_hint` replaces the generic hint of a not-found error (the application's
    naming scheme of its secrets, say).
    """

    source = "aws-secrets-manager"

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        cache_ttl_s: float = 300.0,
        metrics: MetricsRegistry | None = None,
        retry_budget_s: float = 8.0,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        registry: SecretSink | None = None,
        session: aioboto3.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        replicas: Sequence[Region] = (),
        failback_interval_s: float = 30.0,
        not_found_hint: str | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.metrics = metrics or MetricsRegistry()
        self.failover = RegionFailover(
            Region(region, endpoint_url),
            replicas,
            failback_interval_s=failback_interval_s,
            metrics=self.metrics,
            clock=clock,
        )
        self._retry_budget_s = retry_budget_s
        self._probe_timeout_s = connect_timeout_s
        self._config = AioConfig(
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        self._registry: SecretSink = registry or _NoSink()
        # Built on first use: the SDK reads AWS_PROFILE and the config files as it builds
        # a session, and an error there belongs to the first secret read (classified).
        self._session = session
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._clock = clock
        self._not_found_hint = not_found_hint
        self._cache = SecretCache(
            self._fetch_current, ttl_s=cache_ttl_s, metrics=self.metrics, clock=clock
        )
        self._parsed: dict[tuple[str, str, type[SecretModel]], SecretModel] = {}
        # The last LoadedSecret per (name, model): the hit path returns it while the cached
        # version is the same object (building one costs more than the rest of the read).
        self._loaded: dict[tuple[str, type[SecretModel]], LoadedSecret[Any]] = {}
        self._api_calls = self.metrics.counter("SecretsApiCalls", Operation="GetSecretValue")

    async def __aenter__(self) -> Self:
        await self._ensure_client()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def cache(self) -> SecretCache:
        return self._cache

    async def get_secret(self, name: str) -> SecretVersion:
        version = self._cache.get_fresh(name)
        return version if version is not None else await self._cache.get(name)

    async def get_secret_json(self, name: str, model: type[M]) -> LoadedSecret[M]:
        version = self._cache.get_fresh(name)
        if version is None:
            version = await self._cache.get(name)
        loaded = self._loaded.get((name, model))
        if loaded is None or loaded.version is not version:
            loaded = LoadedSecret(self._parse(version, model), version)
            self._loaded[(name, model)] = loaded
        return loaded

    async def refresh(self, name: str, *, seen_version: str | None = None) -> SecretVersion:
        return await self._cache.refresh(name, seen_version=seen_version)

    async def get_secret_stage(self, name: str, stage: str) -> SecretVersion:
        return await self._fetch(name, stage)

    def invalidate(self, name: str | None = None) -> None:
        self._cache.invalidate(name)
        if name is None:
            self._parsed.clear()
            self._loaded.clear()
        else:
            for key in [k for k in self._parsed if k[0] == name]:
                del self._parsed[key]
            for loaded_key in [k for k in self._loaded if k[0] == name]:
                del self._loaded[loaded_key]

    def status(self) -> list[CacheEntryStatus]:
        return self._cache.status()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._cache.aclose()
        await self._stack.aclose()
        self._clients.clear()
        self._parsed.clear()
        self._loaded.clear()

    def _parse(self, version: SecretVersion, model: type[M]) -> M:
        key = (version.name, version.version_id, model)
        cached = self._parsed.get(key)
        if cached is None:
            cached = parse_secret(
                model,
                version.value.get_secret_value(),
                secret_name=version.name,
                region=version.region or self.region,
            )
            self._registry.register(*cached.sensitive_values())
            self._parsed[key] = cached
        return cached  # type: ignore[return-value]

    async def _ensure_client(self, region: Region | None = None) -> Any:
        if self._closed:
            raise ResourceClosedError("secrets provider is closed")
        region = region or self.failover.primary
        client = self._clients.get(region.name)
        if client is None:
            async with self._open_lock:
                client = self._clients.get(region.name)
                if client is None:
                    if self._session is None:
                        self._session = aioboto3.Session()
                    client = await self._stack.enter_async_context(
                        self._session.client(
                            "secretsmanager",
                            region_name=region.name,
                            endpoint_url=region.endpoint_url,
                            config=self._config,
                        )
                    )
                    self._clients[region.name] = client
        return client

    async def _fetch_current(self, name: str) -> SecretVersion:
        return await self._fetch(name, AWSCURRENT)

    async def _fetch(self, name: str, stage: str) -> SecretVersion:
        if not self.failover.replicas:
            return await self._fetch_in(self.failover.primary, name, stage)
        first_error: SecretsError | None = None
        for attempt in self.failover.plan():
            try:
                version = await self._fetch_in(
                    attempt.region, name, stage, probe=attempt.probe, yields=attempt.yields
                )
            except SecretsError as error:
                if not is_retryable(error):
                    raise  # not-found, access-denied, malformed: a real answer, never failed over
                first_error = first_error or error
                continue
            self.failover.answered(
                attempt.region,
                secret=name,
                after_error=None if first_error is None else first_error.aws_error,
            )
            return version
        if first_error is None:  # pragma: no cover - plan() always names the primary
            raise RuntimeError("no region to read from")
        raise first_error

    async def _fetch_in(
        self,
        region: Region,
        name: str,
        stage: str,
        *,
        probe: bool = False,
        yields: bool = False,
    ) -> SecretVersion:
        """Read from one region: retried within the budget, or one short attempt (`probe`).

        With `yields`, retrying stops as soon as another read has failed over.
        """
        try:
            client = await self._ensure_client(region)
        except ResourceClosedError:
            raise
        except Exception as exc:  # the SDK reads its profile and config files here
            raise classify_aws_error(
                exc,
                secret_name=name,
                region=region.name,
                endpoint_url=region.endpoint_url,
                not_found_hint=self._not_found_hint,
            ) from exc
        deadline = time.monotonic() + self._retry_budget_s
        attempt = 0
        while True:
            attempt += 1
            self._api_calls.value += 1
            try:
                if probe:
                    async with asyncio.timeout(self._probe_timeout_s):
                        response = await client.get_secret_value(SecretId=name, VersionStage=stage)
                else:
                    response = await client.get_secret_value(SecretId=name, VersionStage=stage)
            except Exception as exc:
                error = classify_aws_error(
                    exc,
                    secret_name=name,
                    region=region.name,
                    endpoint_url=region.endpoint_url,
                    not_found_hint=self._not_found_hint,
                )
                delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))  # noqa: S311 - jitter, not security
                if (
                    probe
                    or not is_retryable(error)
                    or time.monotonic() + delay > deadline
                    # Another read already moved to a replica: stop spending budget here.
                    or (yields and self.failover.failed_over)
                ):
                    raise error from exc
                log.info(
                    "secrets.retrying",
                    secret=name,
                    stage=stage,
                    region=region.name,
                    attempt=attempt,
                    error=error.aws_error,
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
                continue
            return self._to_version(name, stage, response, region.name)

    def _to_version(
        self, name: str, stage: str, response: dict[str, Any], region: str
    ) -> SecretVersion:
        raw = response.get("SecretString")
        if raw is None:
            binary = response.get("SecretBinary")
            try:
                raw = bytes(binary).decode("utf-8") if binary is not None else None
            except UnicodeDecodeError:
                raw = None
            if raw is None:
                raise SecretFormatError(
                    f"secret {name} has no string value in {region}",
                    secret_name=name,
                    region=region,
                    aws_error="MalformedSecret",
                    hint="store the value as SecretString (text or JSON), not binary",
                )
        self._registry.register_secret_string(raw)
        return SecretVersion(
            name=name,
            value=SecretStr(raw),
            version_id=str(response.get("VersionId", "")),
            created_at=response.get("CreatedDate"),
            stages=tuple(response.get("VersionStages", ()) or (stage,)),
            fetched_at=self._clock(),
            region=region,
        )
