"""`AwsSecretsManagerProvider`: the hot-swap library's (`secretswap.aws`), with every value
it reads registered for kb-mcp's log redaction by default, and kb-mcp's hints."""

from __future__ import annotations

from typing import Any

from secretswap.aws.provider import AwsSecretsManagerProvider as _Provider
from secretswap.aws.provider import SecretSink

from kb_mcp.observability.redaction import secret_registry

__all__ = ["NOT_FOUND_HINT", "AwsSecretsManagerProvider"]

NOT_FOUND_HINT = (
    "check the secret name, AWS_REGION and KB_MCP_ENV (names are "
    "kb-mcp/{dev|staging|prod}/...); for a missing version stage, check the "
    "rotation state with `kb-mcp secrets age`"
)
"""What a not-found error tells an operator of kb-mcp to check (the library's is generic)."""


class AwsSecretsManagerProvider(_Provider):
    """Secrets Manager, each value read registered with `secret_registry()` (or `registry`),
    a secret not found answered with kb-mcp's naming scheme (`NOT_FOUND_HINT`)."""

    def __init__(self, *, registry: SecretSink | None = None, **options: Any) -> None:
        options.setdefault("not_found_hint", NOT_FOUND_HINT)
        super().__init__(registry=registry or secret_registry(), **options)
