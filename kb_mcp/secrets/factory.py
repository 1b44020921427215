"""Build the secrets provider for the configured environment, with the development fallback.

Secrets Manager is used in every environment. Only with `KB_MCP_ENV=development`, and
only when it is unreachable or there are no AWS credentials, the environment variables
serve instead, with a warning. A missing secret or a denied read is a real error in every
environment and never falls back. Staging and production never fall back.
"""

from __future__ import annotations

import asyncio

import structlog
from secretswap.aws.regions import Region
from secretswap.metrics import MetricsRegistry
from secretswap.port import SecretsProvider

from kb_mcp.config import Environment, Settings
from kb_mcp.errors import SecretsUnavailableError
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.env import EnvSecretsProvider

__all__ = ["FALLBACK_WARNING", "open_secrets_provider"]

log = structlog.get_logger(__name__)

FALLBACK_WARNING = (
    "Secrets Manager unavailable in development mode, falling back to environment variables"
)


def build_aws_provider(settings: Settings, metrics: MetricsRegistry) -> AwsSecretsManagerProvider:
    """The Secrets Manager adapter configured from settings, with its replica regions."""
    return AwsSecretsManagerProvider(
        region=settings.aws_region,
        endpoint_url=settings.secrets_endpoint_for(settings.aws_region),
        replicas=[
            Region(name, settings.secrets_endpoint_for(name))
            for name in settings.secrets_replica_regions
        ],
        failback_interval_s=settings.secrets_failback_interval_s,
        cache_ttl_s=settings.cache_ttl_s,
        metrics=metrics,
        retry_budget_s=settings.secrets_retry_budget_s,
        connect_timeout_s=settings.aws_connect_timeout_s,
        read_timeout_s=settings.aws_read_timeout_s,
    )


async def open_secrets_provider(settings: Settings, metrics: MetricsRegistry) -> SecretsProvider:
    """A provider whose required secrets are already in its cache.

    Raises the `SecretsError` of the first secret that could not be read (after the
    development fallback, where it applies).
    """
    provider = build_aws_provider(settings, metrics)
    try:
        await asyncio.gather(*(provider.get_secret(n) for n in settings.required_secret_names))
    except SecretsUnavailableError as exc:
        await provider.aclose()
        if settings.env is not Environment.DEVELOPMENT:
            raise
        log.warning(
            FALLBACK_WARNING,
            event_name="secrets.fallback_to_environment",
            secret=exc.secret_name,
            error=exc.aws_error,
        )
        return EnvSecretsProvider(settings)
    except BaseException:
        await provider.aclose()
        raise
    return provider
