"""`AwsSecretsManagerProvider`: the hot-swap library's (`secretswap.aws`), with every value
it reads registered for kb-mcp's log redaction by default."""

from __future__ import annotations

from typing import Any

from secretswap.aws.provider import AwsSecretsManagerProvider as _Provider
from secretswap.aws.provider import SecretSink

from kb_mcp.observability.redaction import secret_registry

__all__ = ["AwsSecretsManagerProvider"]


class AwsSecretsManagerProvider(_Provider):
    """Secrets Manager, each value read registered with `secret_registry()` (or `registry`)."""

    def __init__(self, *, registry: SecretSink | None = None, **options: Any) -> None:
        super().__init__(registry=registry or secret_registry(), **options)
