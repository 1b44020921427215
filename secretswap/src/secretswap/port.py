"""The secrets port: what the runtime needs from wherever secrets live.

Adapters: `secretswap.aws.AwsSecretsManagerProvider` (the `aws` extra),
`secretswap.testing.MemoryProvider`, or an application's own (an
environment-variable fallback for development, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from pydantic import SecretStr

from secretswap.schemas import SecretModel

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "CacheEntryStatus",
    "LoadedSecret",
    "SecretVersion",
    "SecretsProvider",
]

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"

M = TypeVar("M", bound=SecretModel)


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One version of one secret as read. `value` is a `SecretStr`; the repr shows no value."""

    name: str
    value: SecretStr = field(repr=False)
    version_id: str
    created_at: datetime | None = None
    stages: tuple[str, ...] = ()
    fetched_at: float = 0.0
    """`time.monotonic()` when it was read."""
    region: str | None = None
    """The region it was read from (a replica's during failover); None: no region (env)."""


@dataclass(frozen=True, slots=True)
class LoadedSecret(Generic[M]):
    """A secret parsed into its model, with the version it came from."""

    value: M
    version: SecretVersion

    @property
    def version_id(self) -> str:
        return self.version.version_id


@dataclass(frozen=True, slots=True)
class CacheEntryStatus:
    """What readiness and metrics may say about a cached secret: never its value."""

    name: str
    version_id: str
    age_s: float
    """Seconds since the value was last confirmed by a successful read."""
    stale: bool
    """True when the last refresh failed and the value is being served past its TTL."""
    stale_for_s: float
    last_error: str | None
    created_at: datetime | None
    region: str | None = None
    """The region the cached version was read from (None for the environment fallback)."""


class SecretsProvider(Protocol):
    """Where secrets come from. Reads of the current version are cached; others are not."""

    @property
    def source(self) -> str:
        """A short name for logs: "aws-secrets-manager" or "environment"."""
        ...

    async def get_secret(self, name: str) -> SecretVersion:
        """The AWSCURRENT version, from the cache while it is fresh."""
        ...

    async def get_secret_json(self, name: str, model: type[M]) -> LoadedSecret[M]:
        """The AWSCURRENT version parsed into `model`; a bad shape raises `SecretFormatError`."""
        ...

    async def refresh(self, name: str, *, seen_version: str | None = None) -> SecretVersion:
        """Read the current version now (single-flight), bypassing the TTL.

        With `seen_version`, a refresh already made by someone else since that version was
        served is reused instead of calling the API again (no storms on auth failures).
        Raises on failure, keeping the cached value.
        """
        ...

    async def get_secret_stage(self, name: str, stage: str) -> SecretVersion:
        """A version by stage (AWSPENDING, AWSPREVIOUS), uncached."""
        ...

    def invalidate(self, name: str | None = None) -> None:
        """Forget one cached secret, or all of them."""
        ...

    def status(self) -> list[CacheEntryStatus]:
        """The state of every cached secret."""
        ...

    async def aclose(self) -> None:
        """Release the client; the provider cannot be used afterwards."""
        ...
