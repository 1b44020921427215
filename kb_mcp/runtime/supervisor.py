"""The supervisor: boots every resource from secrets, fails fast, shuts down in order.

`boot_runtime(settings)` is the one lifespan that owns every resource:

1. the secrets provider (Secrets Manager, or in development only the environment
   fallback), with every required secret fetched concurrently and validated;
2. the `OpenAIClientHolder` and the `PoolManager` (pool opened and probed with
   `SELECT 1`), and the bearer-token holder when a token secret is configured;
3. the `Refresher`, watching each secret on behalf of the resource built from it.

Any failure before the runtime is yielded closes whatever was opened (nothing
half-started stays running) and raises the `KbMcpError` that says what went wrong. On
exit, resources close in reverse order: pool and client wait for their users first.
Background tasks (refresher, metrics) are run by the caller's TaskGroup (see `serve.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from kb_mcp.config import Settings
from kb_mcp.db.pool import InitConnection, PoolManager
from kb_mcp.embeddings.holder import OpenAIClientHolder
from kb_mcp.observability.counters import MetricsRegistry
from kb_mcp.runtime.health import EmbeddingsHealth, RuntimeHealth, SecretHealth, probe_quietly
from kb_mcp.runtime.refresher import Refresher
from kb_mcp.runtime.tokens import AuthTokenHolder
from kb_mcp.secrets.factory import open_secrets_provider
from kb_mcp.secrets.port import SecretsProvider
from kb_mcp.secrets.schemas import AuthTokenSecret, OpenAIKeySecret, PostgresCredentials

__all__ = ["Runtime", "boot_runtime"]

log = structlog.get_logger(__name__)

OnPoolReady = Callable[[PoolManager], Awaitable[None]]


@dataclass(eq=False)
class Runtime:
    """Everything a booted kb-mcp process owns. Tools and HTTP handlers read from it."""

    settings: Settings
    metrics: MetricsRegistry
    provider: SecretsProvider
    pool: PoolManager
    openai: OpenAIClientHolder
    tokens: AuthTokenHolder | None
    refresher: Refresher
    booted_in_s: float
    stopping: bool = False
    started_at: float = field(default_factory=time.monotonic)
    embeddings_health: EmbeddingsHealth = field(default_factory=EmbeddingsHealth)

    def in_service_versions(self) -> dict[str, str | None]:
        versions: dict[str, str | None] = {
            self.settings.postgres_secret_name: self.pool.version_id,
            self.settings.openai_secret_name: self.openai.version_id,
        }
        if self.tokens is not None:
            versions[self.tokens.secret_name] = self.tokens.version_id
        return versions

    async def health(self, *, probe_timeout_s: float = 2.0) -> RuntimeHealth:
        """Readiness: secrets loaded, pool answering, staleness within budget."""
        in_service = self.in_service_versions()
        secrets = tuple(
            SecretHealth.from_status(s, in_service.get(s.name)) for s in self.provider.status()
        )
        db_ok, db_detail = await probe_quietly(
            lambda: self.pool.probe(probe_timeout_s), probe_timeout_s + 0.5
        )
        loaded = {s.name for s in secrets}
        all_loaded = all(name in loaded for name in self.settings.required_secret_names)
        degraded = any(s.stale and s.stale_for_s > self.settings.max_staleness_s for s in secrets)
        embeddings_ok, embeddings_detail = await self.embeddings_health.check(
            lambda: asyncio.wait_for(self._probe_embeddings(), probe_timeout_s)
        )
        return RuntimeHealth(
            ready=db_ok and all_loaded and not self.stopping,
            degraded=degraded or not embeddings_ok,
            stopping=self.stopping,
            database_ok=db_ok,
            database_detail=db_detail,
            secrets_source=self.provider.source,
            secrets=secrets,
            embeddings_ok=embeddings_ok,
            embeddings_detail=embeddings_detail,
        )

    async def _probe_embeddings(self) -> None:
        """One embedding of a short text, checked like any answer (readiness, rate-limited)."""
        from kb_mcp.embeddings.embedder import Embedder

        embedder = Embedder(
            self.openai,
            model=self.settings.embedding_model,
            dimensions=self.settings.embedding_dimensions,
        )
        await embedder.embed_one("readiness probe")


@asynccontextmanager
async def boot_runtime(
    settings: Settings,
    *,
    metrics: MetricsRegistry | None = None,
    pool_init: InitConnection | None = None,
    on_pool_ready: OnPoolReady | None = None,
) -> AsyncIterator[Runtime]:
    """Boot every resource or raise; close them all in reverse order on exit."""
    started = time.monotonic()
    registry = metrics or MetricsRegistry()
    async with AsyncExitStack() as stack:
        provider = await open_secrets_provider(settings, registry)
        stack.push_async_callback(provider.aclose)
        log.info("secrets.provider_ready", source=provider.source, region=settings.aws_region)

        # Validate every secret's shape before building anything from it.
        checks: list[Awaitable[Any]] = [
            provider.get_secret_json(settings.openai_secret_name, OpenAIKeySecret),
            provider.get_secret_json(settings.postgres_secret_name, PostgresCredentials),
        ]
        if settings.auth_token_secret_name:
            checks.append(
                provider.get_secret_json(settings.auth_token_secret_name, AuthTokenSecret)
            )
        await asyncio.gather(*checks)

        openai_holder = OpenAIClientHolder(
            provider,
            settings.openai_secret_name,
            base_url=settings.openai_base_url,
            timeout_s=settings.openai_timeout_s,
            probe_on_rotation=settings.probe_openai_key,
            drain_timeout_s=settings.drain_timeout_s,
            metrics=registry,
        )
        await openai_holder.start()
        stack.push_async_callback(openai_holder.aclose)

        pool = PoolManager(
            provider,
            settings.postgres_secret_name,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            connect_timeout_s=settings.db_connect_timeout_s,
            drain_timeout_s=settings.drain_timeout_s,
            init=pool_init,
            metrics=registry,
        )
        await pool.start()
        stack.push_async_callback(pool.aclose)
        await pool.probe()
        if on_pool_ready is not None:
            await on_pool_ready(pool)

        tokens: AuthTokenHolder | None = None
        if settings.auth_token_secret_name:
            tokens = AuthTokenHolder(provider, settings.auth_token_secret_name)
            await tokens.start()

        refresher = Refresher(
            provider,
            interval_s=settings.cache_ttl_s,
            jitter_ratio=settings.refresh_jitter_ratio,
            metrics=registry,
        )
        refresher.watch(settings.postgres_secret_name, _required(pool.version_id), pool)
        refresher.watch(
            settings.openai_secret_name, _required(openai_holder.version_id), openai_holder
        )
        if tokens is not None:
            refresher.watch(tokens.secret_name, _required(tokens.version_id), tokens)

        runtime = Runtime(
            settings=settings,
            metrics=registry,
            provider=provider,
            pool=pool,
            openai=openai_holder,
            tokens=tokens,
            refresher=refresher,
            booted_in_s=time.monotonic() - started,
        )
        log.info(
            "runtime.booted",
            booted_in_s=round(runtime.booted_in_s, 3),
            env=settings.env.value,
            versions=runtime.in_service_versions(),
        )
        try:
            yield runtime
        finally:
            runtime.stopping = True
            log.info("runtime.stopping")
    log.info("runtime.stopped")


def _required(version_id: str | None) -> str:
    if version_id is None:
        raise RuntimeError("resource started without a version")  # pragma: no cover
    return version_id
