"""Secrets: the provider port, its adapters (Secrets Manager, environment), schemas, cache."""

from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.cache import SecretCache
from kb_mcp.secrets.env import EnvSecretsProvider
from kb_mcp.secrets.factory import FALLBACK_WARNING, open_secrets_provider
from kb_mcp.secrets.port import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    CacheEntryStatus,
    LoadedSecret,
    SecretsProvider,
    SecretVersion,
)
from kb_mcp.secrets.schemas import (
    AuthTokenSecret,
    OpenAIKeySecret,
    PostgresCredentials,
    SecretModel,
    parse_secret,
)

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "FALLBACK_WARNING",
    "AuthTokenSecret",
    "AwsSecretsManagerProvider",
    "CacheEntryStatus",
    "EnvSecretsProvider",
    "LoadedSecret",
    "OpenAIKeySecret",
    "PostgresCredentials",
    "SecretCache",
    "SecretModel",
    "SecretVersion",
    "SecretsProvider",
    "open_secrets_provider",
    "parse_secret",
]
