"""The secrets port: what the runtime needs from wherever secrets live.

It is the hot-swap library's (`secretswap.port`), re-exported. Adapters:
`AwsSecretsManagerProvider` (aioboto3, in every environment) and `EnvSecretsProvider`
(environment variables, the development fallback only).
"""

from secretswap.port import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    CacheEntryStatus,
    LoadedSecret,
    M,
    SecretsProvider,
    SecretVersion,
)

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "CacheEntryStatus",
    "LoadedSecret",
    "M",
    "SecretVersion",
    "SecretsProvider",
]
