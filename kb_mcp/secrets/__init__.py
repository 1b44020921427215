"""kb-mcp's secrets: the providers it builds (Secrets Manager with log redaction, the
development fallback from the environment), the factory choosing between them, and the
shapes of its secrets.

The port, the cache and the base model are the `secretswap` library's
(`secretswap.port`, `secretswap.cache`, `secretswap.schemas`): import them from there.

The names below are imported when first used (PEP 562), so importing one module of the
package (`kb_mcp.secrets.schemas`, say) does not load aioboto3 and botocore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kb_mcp.lazy import lazy_exports

if TYPE_CHECKING:
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

__getattr__ = lazy_exports(
    __name__,
    {
        "AwsSecretsManagerProvider": "kb_mcp.secrets.aws",
        "EnvSecretsProvider": "kb_mcp.secrets.env",
        "FALLBACK_WARNING": "kb_mcp.secrets.factory",
        "open_secrets_provider": "kb_mcp.secrets.factory",
        "AuthTokenSecret": "kb_mcp.secrets.schemas",
        "OpenAIKeySecret": "kb_mcp.secrets.schemas",
        "PostgresCredentials": "kb_mcp.secrets.schemas",
    },
)
