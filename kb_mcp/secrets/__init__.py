"""kb-mcp's secrets: the providers it builds (Secrets Manager with log redaction, the
development fallback from the environment), the factory choosing between them, and the
shapes of its secrets.

The port, the cache and the base model are the `secretswap` library's
(`secretswap.port`, `secretswap.cache`, `secretswap.schemas`): import them from there.
"""

from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.env import EnvSecretsProvider
from kb_mcp.secrets.factory import FALLBACK_WARNING, open_secrets_provider
from kb_mcp.secrets.schemas import AuthTokenSecret, OpenAIKeySecret, PostgresCredentials

__all__ = [
    "FALLBACK_WARNING",
    "AuthTokenSecret",
    "AwsSecretsManagerProvider",
    "EnvSecretsProvider",
    "OpenAIKeySecret",
    "PostgresCredentials",
    "open_secrets_provider",
]
