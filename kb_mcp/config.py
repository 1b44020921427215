"""Settings: the only place kb-mcp reads environment variables.

`load_settings()` reads the environment once and turns any invalid value into a
`ConfigError` naming the variable (never echoing its value: some are secrets).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from kb_mcp.errors import ConfigError

__all__ = ["Environment", "Settings", "load_settings"]


class Environment(StrEnum):
    """Where the service runs; decides the secret names and whether a fallback exists."""

    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"

    @property
    def short(self) -> str:
        """The `{env}` part of secret names: dev, staging or prod."""
        return {"development": "dev", "staging": "staging", "production": "prod"}[self.value]


class Settings(BaseSettings):
    """Every tunable of kb-mcp, read from the environment (names in docs/CONFIGURATION.md)."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
        hide_input_in_errors=True,
    )

    env: Environment = Field(default=Environment.PRODUCTION, validation_alias="KB_MCP_ENV")

    # AWS
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")
    aws_connect_timeout_s: float = Field(
        default=2.0, gt=0, validation_alias="KB_MCP_AWS_CONNECT_TIMEOUT_S"
    )
    aws_read_timeout_s: float = Field(
        default=5.0, gt=0, validation_alias="KB_MCP_AWS_READ_TIMEOUT_S"
    )
    secrets_retry_budget_s: float = Field(
        default=8.0, ge=0, validation_alias="KB_MCP_SECRETS_RETRY_BUDGET_S"
    )

    # Replica regions (read failover): ordered, comma-separated; per-region endpoints are for
    # emulators ("us-west-2=http://127.0.0.1:4567,..."), real regions need none.
    secrets_replica_regions_list: str = Field(
        default="", validation_alias="KB_MCP_SECRETS_REPLICA_REGIONS"
    )
    secrets_region_endpoints_list: str = Field(
        default="", validation_alias="KB_MCP_SECRETS_REGION_ENDPOINTS"
    )
    secrets_failback_interval_s: float = Field(
        default=30.0, gt=0, validation_alias="KB_MCP_SECRETS_FAILBACK_INTERVAL_S"
    )

    # Secret names (derived from env unless overridden)
    openai_secret_name_override: str | None = Field(
        default=None, validation_alias="KB_MCP_OPENAI_SECRET_NAME"
    )
    postgres_secret_name_override: str | None = Field(
        default=None, validation_alias="KB_MCP_POSTGRES_SECRET_NAME"
    )
    auth_token_secret_name: str | None = Field(
        default=None, validation_alias="KB_MCP_AUTH_TOKEN_SECRET"
    )

    # Cache and refresh
    cache_ttl_s: float = Field(default=300.0, gt=0, validation_alias="SECRETS_CACHE_TTL_SECONDS")
    refresh_jitter_ratio: float = Field(
        default=0.1, ge=0, lt=1, validation_alias="KB_MCP_REFRESH_JITTER_RATIO"
    )
    max_staleness_s: float = Field(default=3600.0, gt=0, validation_alias="KB_MCP_MAX_STALENESS_S")
    drain_timeout_s: float = Field(default=30.0, gt=0, validation_alias="KB_MCP_DRAIN_TIMEOUT_S")

    # Database pool
    db_pool_min_size: int = Field(default=2, ge=0, validation_alias="KB_MCP_DB_POOL_MIN_SIZE")
    db_pool_max_size: int = Field(default=10, ge=1, validation_alias="KB_MCP_DB_POOL_MAX_SIZE")
    db_connect_timeout_s: float = Field(
        default=5.0, gt=0, validation_alias="KB_MCP_DB_CONNECT_TIMEOUT_S"
    )
    db_tcp_user_timeout_s: float = Field(
        default=10.0, ge=0, validation_alias="KB_MCP_DB_TCP_USER_TIMEOUT_S"
    )
    """A silent database connection is closed after this long (0: the kernel's defaults)."""
    db_outage_grace_s: float = Field(
        default=30.0, ge=0, validation_alias="KB_MCP_DB_OUTAGE_GRACE_S"
    )
    """/readyz stays 200 (degraded) for this long into a database outage."""

    # This region's database endpoint (a failover region, an RDS Proxy) instead of the
    # secret's host: a replica secret carries the primary's host.
    db_host_override: str | None = Field(
        default=None, min_length=1, validation_alias="KB_MCP_DB_HOST_OVERRIDE"
    )

    # Requests
    request_timeout_s: float = Field(
        default=30.0, gt=0, le=300, validation_alias="KB_MCP_REQUEST_TIMEOUT_S"
    )
    """The budget of each tool call and resource read (kb_mcp.deadline)."""

    # Embeddings
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    embedding_model: str = Field(
        default="text-embedding-3-small", min_length=1, validation_alias="KB_MCP_EMBEDDING_MODEL"
    )
    embedding_dimensions: int = Field(
        default=1536, ge=1, le=16000, validation_alias="KB_MCP_EMBEDDING_DIMENSIONS"
    )
    openai_timeout_s: float = Field(default=30.0, gt=0, validation_alias="KB_MCP_OPENAI_TIMEOUT_S")
    openai_http_transport: Literal["auto", "aiohttp", "httpx"] = Field(
        default="auto",
        validation_alias="KB_MCP_OPENAI_HTTP_TRANSPORT",
        description=(
            "The openai client's HTTP transport: aiohttp (the SDK's aiohttp extra), httpx "
            "(its default), auto: aiohttp when installed."
        ),
    )
    probe_openai_key: bool = Field(default=True, validation_alias="KB_MCP_PROBE_OPENAI_KEY")
    # Readiness: embeddings calls waiting this long with no answer meanwhile make /readyz
    # degraded (runtime/health.py); also the bound of its embeddings probe (at most 2 s).
    embeddings_stall_s: float = Field(
        default=5.0, gt=0, validation_alias="KB_MCP_EMBEDDINGS_STALL_S"
    )
    # Query-embedding cache (kb_mcp.embeddings.cache): 0 entries turns it off.
    embedding_cache_entries: int = Field(
        default=10_000, ge=0, validation_alias="KB_MCP_EMBEDDING_CACHE_ENTRIES"
    )
    embedding_cache_mb: float = Field(
        default=64.0, gt=0, validation_alias="KB_MCP_EMBEDDING_CACHE_MB"
    )
    # Embeddings calls in flight before requests share one (kb_mcp.embeddings.coalesce);
    # 0: every request is its own call.
    embedding_max_calls: int = Field(
        default=4, ge=0, le=1000, validation_alias="KB_MCP_EMBEDDING_MAX_CALLS"
    )

    # HTTP transport (DNS-rebinding protection: Host and Origin allow-lists, comma-separated)
    allowed_hosts: str = Field(default="", validation_alias="KB_MCP_ALLOWED_HOSTS")
    allowed_origins: str = Field(default="", validation_alias="KB_MCP_ALLOWED_ORIGINS")

    # Observability
    log_level: str = Field(default="INFO", validation_alias="KB_MCP_LOG_LEVEL")
    log_format: str = Field(default="auto", validation_alias="KB_MCP_LOG_FORMAT")
    metrics_flush_interval_s: float = Field(
        default=60.0, gt=0, validation_alias="KB_MCP_METRICS_FLUSH_INTERVAL_S"
    )

    # Development fallback (read only when KB_MCP_ENV=development and AWS is unreachable)
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    db_host: str | None = Field(default=None, validation_alias="DB_HOST")
    db_port: int | None = Field(default=None, gt=0, lt=65536, validation_alias="DB_PORT")
    db_user: str | None = Field(default=None, validation_alias="DB_USER")
    db_password: SecretStr | None = Field(default=None, validation_alias="DB_PASSWORD")
    db_name: str | None = Field(default=None, validation_alias="DB_NAME")
    auth_token: SecretStr | None = Field(default=None, validation_alias="KB_MCP_AUTH_TOKEN")

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    @field_validator("log_format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        lower = value.lower()
        if lower not in {"auto", "json", "console"}:
            raise ValueError("must be one of auto, json, console")
        return lower

    @field_validator("secrets_replica_regions_list")
    @classmethod
    def _check_replicas(cls, value: str, info: ValidationInfo) -> str:
        regions = _split(value)
        if info.data.get("aws_region") in regions:
            raise ValueError("must not include the primary region (aws_region)")
        for region in regions:
            if not _REGION_RE.fullmatch(region):
                raise ValueError(f"{region!r} is not an aws region name (like us-west-2)")
        if len(set(regions)) != len(regions):
            raise ValueError("lists a region twice")
        return ",".join(regions)

    @field_validator("secrets_region_endpoints_list")
    @classmethod
    def _check_endpoints(cls, value: str) -> str:
        pairs = _split(value)
        for pair in pairs:
            region, sep, url = pair.partition("=")
            if not sep or not _REGION_RE.fullmatch(region.strip()):
                raise ValueError("must be region=url pairs separated by commas")
            if not url.strip().startswith(("http://", "https://")):
                raise ValueError(f"endpoint of {region.strip()} is not an http(s) url")
        return ",".join(pairs)

    @property
    def secrets_replica_regions(self) -> tuple[str, ...]:
        """Regions holding replicas of the secrets, in failover order."""
        return tuple(_split(self.secrets_replica_regions_list))

    def secrets_endpoint_for(self, region: str) -> str | None:
        """The Secrets Manager endpoint of `region`: its own override, else AWS_ENDPOINT_URL."""
        for pair in _split(self.secrets_region_endpoints_list):
            name, _, url = pair.partition("=")
            if name.strip() == region:
                return url.strip()
        return self.aws_endpoint_url

    @property
    def openai_secret_name(self) -> str:
        """Name of the OpenAI API key secret."""
        return self.openai_secret_name_override or f"kb-mcp/{self.env.short}/openai-api-key"

    @property
    def postgres_secret_name(self) -> str:
        """Name of the PostgreSQL credentials secret."""
        return self.postgres_secret_name_override or f"kb-mcp/{self.env.short}/postgres-credentials"

    @property
    def required_secret_names(self) -> tuple[str, ...]:
        """Every secret the service needs at boot."""
        names: tuple[str, ...] = (self.openai_secret_name, self.postgres_secret_name)
        if self.auth_token_secret_name:
            names = (*names, self.auth_token_secret_name)
        return names

    @property
    def json_logs(self) -> bool:
        """JSON lines in staging/production, readable console output in development."""
        if self.log_format == "auto":
            return self.env is not Environment.DEVELOPMENT
        return self.log_format == "json"


_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _variable_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    if info is not None and info.validation_alias is not None:
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return str(alias)
    return field.upper()


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; an invalid value raises `ConfigError` naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        variable = _variable_name(first["loc"])
        # The cause is dropped on purpose: pydantic's error text can carry the rejected value,
        # and some of these variables are secrets.
        raise ConfigError(
            f"invalid setting {variable}: {first['msg'].lower()}",
            variable=variable,
            hint=f"check the environment variable {variable}",
        ) from None
