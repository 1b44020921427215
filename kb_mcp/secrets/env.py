"""`EnvSecretsProvider`: the development fallback, secrets from environment variables.

Used only with `KB_MCP_ENV=development` when Secrets Manager is unreachable or there are
no AWS credentials (see `factory.py`). Values never change while the process runs, so
every version id is "env" and a forced refresh finds nothing new.
"""

from __future__ import annotations

import json
import time
from typing import TypeVar

from pydantic import SecretStr
from secretswap.port import AWSCURRENT, CacheEntryStatus, LoadedSecret, SecretVersion
from secretswap.schemas import SecretModel, parse_secret

from kb_mcp.config import Settings
from kb_mcp.errors import SecretNotFoundError
from kb_mcp.observability.redaction import SecretValueRegistry, secret_registry

__all__ = ["ENV_VERSION_ID", "EnvSecretsProvider"]

ENV_VERSION_ID = "env"
M = TypeVar("M", bound=SecretModel)


class EnvSecretsProvider:
    """Serves the kb-mcp secrets from `OPENAI_API_KEY`, `DB_*` and `KB_MCP_AUTH_TOKEN`."""

    source = "environment"

    def __init__(self, settings: Settings, *, registry: SecretValueRegistry | None = None) -> None:
        self._settings = settings
        self._registry = registry or secret_registry()
        self._loaded_at = time.monotonic()
        self._served: set[str] = set()

    async def get_secret(self, name: str) -> SecretVersion:
        raw = self._raw(name)
        self._registry.register_secret_string(raw)
        self._served.add(name)
        return SecretVersion(
            name=name,
            value=SecretStr(raw),
            version_id=ENV_VERSION_ID,
            stages=(AWSCURRENT,),
            fetched_at=self._loaded_at,
        )

    async def get_secret_json(self, name: str, model: type[M]) -> LoadedSecret[M]:
        version = await self.get_secret(name)
        value = parse_secret(model, version.value.get_secret_value(), secret_name=name)
        self._registry.register(*value.sensitive_values())
        return LoadedSecret(value, version)

    async def refresh(self, name: str, *, seen_version: str | None = None) -> SecretVersion:
        return await self.get_secret(name)

    async def get_secret_stage(self, name: str, stage: str) -> SecretVersion:
        if stage == AWSCURRENT:
            return await self.get_secret(name)
        raise SecretNotFoundError(
            f"secret {name} has no {stage} version in environment variables",
            secret_name=name,
            aws_error="ResourceNotFoundException",
            hint="version stages exist only in Secrets Manager",
        )

    def invalidate(self, name: str | None = None) -> None:
        return None

    def status(self) -> list[CacheEntryStatus]:
        age = time.monotonic() - self._loaded_at
        return [
            CacheEntryStatus(
                name=name,
                version_id=ENV_VERSION_ID,
                age_s=age,
                stale=False,
                stale_for_s=0.0,
                last_error=None,
                created_at=None,
            )
            for name in sorted(self._served)
        ]

    async def aclose(self) -> None:
        return None

    def _raw(self, name: str) -> str:
        s = self._settings
        if name == s.openai_secret_name:
            return self._required(name, "OPENAI_API_KEY", s.openai_api_key)
        if name == s.postgres_secret_name:
            missing = [
                var
                for var, value in (
                    ("DB_HOST", s.db_host),
                    ("DB_PORT", s.db_port),
                    ("DB_USER", s.db_user),
                    ("DB_PASSWORD", s.db_password),
                    ("DB_NAME", s.db_name),
                )
                if value in (None, "")
            ]
            if missing:
                raise self._not_found(name, ", ".join(missing))
            assert s.db_password is not None
            return json.dumps(
                {
                    "username": s.db_user,
                    "password": s.db_password.get_secret_value(),
                    "host": s.db_host,
                    "port": s.db_port,
                    "database": s.db_name,
                }
            )
        if s.auth_token_secret_name and name == s.auth_token_secret_name:
            return self._required(name, "KB_MCP_AUTH_TOKEN", s.auth_token)
        raise self._not_found(name, "(no environment variable maps to this secret)")

    def _required(self, name: str, variable: str, value: SecretStr | None) -> str:
        if value is None or not value.get_secret_value():
            raise self._not_found(name, variable)
        return value.get_secret_value()

    @staticmethod
    def _not_found(name: str, variables: str) -> SecretNotFoundError:
        return SecretNotFoundError(
            f"secret {name} not available from the environment fallback: {variables} not set",
            secret_name=name,
            aws_error="ResourceNotFoundException",
            hint=f"set {variables} in the environment or .env, or start the local stack",
        )
