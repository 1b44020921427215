"""The supervisor: boots every resource from secrets, fails fast, shuts down in order.

`boot_runtime(settings)` is the one lifespan that owns every resource:

1. the secrets provider (Secrets Manager, or in development only the environment
   fallback); every required secret is read once, concurrently, and parsed into its
   model (a bad shape fails the boot before anything is built);
2. the `Refresher` (`secretswap`), the only owner and record of which version is in
   service (holders and readiness read it there);
3. the `OpenAIClientHolder` and the `PoolManager` (pool opened and probed with
   `SELECT 1`), built from those parsed values, and the bearer-token holder when a token
   secret is configured, each watched by the refresher, which they ask for recovery on
   an auth failure;
4. the TaskGroup that owns drains of swapped-out generations.

Any failure before the runtime is yielded closes whatever was opened (nothing
half-started stays running) and raises the `KbMcpError` that says what went wrong. On
exit, resources close in reverse order: pool and client wait for their users first.
The refresher and the metrics emitter run in the caller's TaskGroup (see `serve.py`).
Stopping is one event (`Runtime.stop`): signals set it, readiness reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import structlog
from secretswap import Observer, Refresher, background_group
from secretswap.metrics import MetricsRegistry
from secretswap.port import LoadedSecret, SecretsProvider

from kb_mcp.config import Settings
from kb_mcp.db.keepalive import SocketOptions
from kb_mcp.db.pool import InitConnection, PoolManager
from kb_mcp.embeddings.holder import OpenAIClientHolder
from kb_mcp.observability.swap_metrics import SwapMetrics
from kb_mcp.runtime.health import (
    DatabaseOutage,
    EmbeddingsHealth,
    RuntimeHealth,
    SecretHealth,
    probe_quietly,
)
from kb_mcp.runtime.tokens import AuthTokenHolder
from kb_mcp.secrets.factory import open_secrets_provider
from kb_mcp.secrets.schemas import AuthTokenSecret, OpenAIKeySecret, PostgresCredentials

__all__ = ["Runtime", "boot_runtime"]

log = structlog.get_logger(__name__)

OnPoolReady = Callable[[PoolManager], Awaitable[None]]
STATEMENT_TIMEOUT_MARGIN_S = 5.0
"""The server-side `statement_timeout` is the request budget plus this: the request's own
deadline cancels first; this only ends a statement whose cancel never arrived."""


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
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once to stop: by a signal, by the transport ending, or by the caller."""
    started_at: float = field(default_factory=time.monotonic)
    embeddings_health: EmbeddingsHealth = field(default_factory=EmbeddingsHealth)
    database_outage: DatabaseOutage | None = None
    """Set at boot from `db_outage_grace_s`; None: no grace (/readyz 503 at once)."""

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    def in_service_versions(self) -> dict[str, str]:
        """Each watched secret's version in service: the refresher's record, the only one."""
        return self.refresher.versions_in_service()

    async def health(self, *, probe_timeout_s: float = 2.0) -> RuntimeHealth:
        """Readiness: secrets loaded, pool answering, staleness within budget."""
        in_service = self.in_service_versions()
        secrets = tuple(
            SecretHealth.from_status(s, in_service.get(s.name)) for s in self.provider.status()
        )
        db_ok, db_detail = await probe_quietly(
            lambda: self.pool.probe(probe_timeout_s), probe_timeout_s + 0.5
        )
        in_grace = self.database_outage is not None and self.database_outage.record(db_ok)
        loaded = {s.name for s in secrets}
        all_loaded = all(name in loaded for name in self.settings.required_secret_names)
        degraded = any(s.stale and s.stale_for_s > self.settings.max_staleness_s for s in secrets)
        embeddings_ok, embeddings_detail = await self.embeddings_health.check(
            self._probe_embeddings
        )
        rejected = tuple(self.refresher.rejected())
        return RuntimeHealth(
            ready=(db_ok or in_grace) and all_loaded and not self.stopping,
            degraded=degraded or not embeddings_ok or not db_ok or bool(rejected),
            stopping=self.stopping,
            database_ok=db_ok,
            database_detail=db_detail,
            secrets_source=self.provider.source,
            secrets=secrets,
            embeddings_ok=embeddings_ok,
            embeddings_detail=embeddings_detail,
            rotation_rejected=rejected,
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
    stop: asyncio.Event | None = None,
    observers: tuple[Observer, ...] = (),
) -> AsyncIterator[Runtime]:
    """Boot every resource or raise; close them all in reverse order on exit.

    `stop`: the event that stops this runtime (created when not given). `observers` see
    every poll, detected rotation and swap (benchmarks, tests).
    """
    started = time.monotonic()
    registry = metrics or MetricsRegistry()
    async with AsyncExitStack() as stack:
        provider = await open_secrets_provider(settings, registry)
        stack.push_async_callback(provider.aclose)
        log.info("secrets.provider_ready", source=provider.source, region=settings.aws_region)
        drains = await stack.enter_async_context(background_group())

        key, credentials, token = await _read_secrets(provider, settings)

        recoveries = SwapMetrics(
            registry,
            recoveries={
                settings.postgres_secret_name: "DatabaseAuthRecoveries",
                settings.openai_secret_name: "OpenAIAuthRecoveries",
            },
        )
        refresher = Refresher(
            provider,
            interval_s=settings.cache_ttl_s,
            jitter_ratio=settings.refresh_jitter_ratio,
            metrics=registry,
            observers=(recoveries, *observers),
        )
        openai_holder = OpenAIClientHolder(
            settings.openai_secret_name,
            tasks=drains,
            refresher=refresher,
            base_url=settings.openai_base_url,
            timeout_s=settings.openai_timeout_s,
            transport=settings.openai_http_transport,
            probe_on_rotation=settings.probe_openai_key,
            drain_timeout_s=settings.drain_timeout_s,
            metrics=registry,
            observers=observers,
        )
        await openai_holder.start(key)
        stack.push_async_callback(openai_holder.aclose)

        pool = PoolManager(
            settings.postgres_secret_name,
            tasks=drains,
            refresher=refresher,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            connect_timeout_s=settings.db_connect_timeout_s,
            drain_timeout_s=settings.drain_timeout_s,
            init=pool_init,
            metrics=registry,
            observers=observers,
            statement_timeout_s=settings.request_timeout_s + STATEMENT_TIMEOUT_MARGIN_S,
            socket_options=(
                SocketOptions(user_timeout_s=settings.db_tcp_user_timeout_s)
                if settings.db_tcp_user_timeout_s > 0
                else None
            ),
            host_override=settings.db_host_override,
        )
        await pool.start(credentials)
        stack.push_async_callback(pool.aclose)
        await pool.probe()
        if on_pool_ready is not None:
            await on_pool_ready(pool)

        tokens: AuthTokenHolder | None = None
        if token is not None:
            tokens = AuthTokenHolder(provider, token.version.name)
            await tokens.start(token)

        refresher.watch(credentials, pool, offer_pending=True)
        refresher.watch(key, openai_holder)
        if token is not None and tokens is not None:
            refresher.watch(token, tokens)

        runtime = Runtime(
            settings=settings,
            metrics=registry,
            provider=provider,
            pool=pool,
            openai=openai_holder,
            tokens=tokens,
            refresher=refresher,
            booted_in_s=time.monotonic() - started,
            stop=stop or asyncio.Event(),
            embeddings_health=EmbeddingsHealth(
                stall_s=settings.embeddings_stall_s,
                probe_timeout_s=min(2.0, settings.embeddings_stall_s),
            ),
            database_outage=(
                DatabaseOutage(grace_s=settings.db_outage_grace_s)
                if settings.db_outage_grace_s > 0
                else None
            ),
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
            runtime.stop.set()
            log.info("runtime.stopping")
    log.info("runtime.stopped")


async def _read_secrets(
    provider: SecretsProvider, settings: Settings
) -> tuple[
    LoadedSecret[OpenAIKeySecret],
    LoadedSecret[PostgresCredentials],
    LoadedSecret[AuthTokenSecret] | None,
]:
    """Every required secret, read once and parsed (concurrently)."""

    async def token() -> LoadedSecret[AuthTokenSecret] | None:
        if not settings.auth_token_secret_name:
            return None
        return await provider.get_secret_json(settings.auth_token_secret_name, AuthTokenSecret)

    return await asyncio.gather(
        provider.get_secret_json(settings.openai_secret_name, OpenAIKeySecret),
        provider.get_secret_json(settings.postgres_secret_name, PostgresCredentials),
        token(),
    )
