"""Typed shapes of the secrets kb-mcp reads, and their parsing.

Values are `SecretStr`; nothing here has a repr that shows one. The base model and the
parsing (`SecretModel`, `parse_secret`: failures are `SecretFormatError` built from the
error locations only, never the input) are the hot-swap library's (`secretswap.schemas`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from pydantic import ConfigDict, Field, SecretStr, field_validator
from secretswap.schemas import SecretModel

__all__ = ["AuthTokenSecret", "OpenAIKeySecret", "PostgresCredentials"]

OPENAI_KEY_MIN_LENGTH = 20
AUTH_TOKEN_MIN_LENGTH = 24


class OpenAIKeySecret(SecretModel):
    """The OpenAI API key: a plain string secret of at least 20 characters.

    A JSON object `{"api_key": "..."}` is accepted too, for teams that store keys as JSON.
    """

    api_key: SecretStr

    @field_validator("api_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if key != key.strip() or any(ch.isspace() for ch in key):
            raise ValueError("api key must not contain whitespace")
        if len(key) < OPENAI_KEY_MIN_LENGTH:
            raise ValueError(f"api key must be at least {OPENAI_KEY_MIN_LENGTH} characters")
        return value

    @classmethod
    def from_secret_string(cls, raw: str) -> OpenAIKeySecret:
        stripped = raw.strip()
        if stripped.startswith("{"):  # JSON text that opens with "{" is an object or invalid
            return cls.model_validate(json.loads(stripped))
        return cls(api_key=SecretStr(stripped))


class AuthTokenSecret(SecretModel):
    """The bearer token clients present on `/mcp`: a plain string of at least 24 characters."""

    token: SecretStr

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < AUTH_TOKEN_MIN_LENGTH:
            raise ValueError(f"token must be at least {AUTH_TOKEN_MIN_LENGTH} characters")
        return value

    @classmethod
    def from_secret_string(cls, raw: str) -> AuthTokenSecret:
        return cls(token=SecretStr(raw.strip()))


class PostgresCredentials(SecretModel):
    """PostgreSQL credentials as AWS's RDS secret templates store them (JSON)."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True, strict=True)

    username: str = Field(min_length=1)
    password: SecretStr
    host: str = Field(min_length=1)
    port: int = Field(gt=0, lt=65536)
    database: str = Field(min_length=1, validation_alias="database")

    @field_validator("password")
    @classmethod
    def _non_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("password must not be empty")
        return value

    @field_validator("username", "host", "database")
    @classmethod
    def _no_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @classmethod
    def from_secret_string(cls, raw: str) -> PostgresCredentials:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise TypeError("secret json must be an object")
        # AWS's RDS templates name the database `dbname`; accept it as an alias.
        if "database" not in data and "dbname" in data:
            data = {**data, "database": data["dbname"]}
        return cls.model_validate(data)

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect` / `create_pool` (holds the password)."""
        return {
            "user": self.username,
            "password": self.password.get_secret_value(),
            "host": self.host,
            "port": self.port,
            "database": self.database,
        }

    def dsn(self) -> SecretStr:
        """A libpq URL, wrapped so that it never shows in a repr or a log."""
        user = quote(self.username, safe="")
        password = quote(self.password.get_secret_value(), safe="")
        return SecretStr(
            f"postgresql://{user}:{password}@{self.host}:{self.port}/{quote(self.database)}"
        )

    def identity(self) -> str:
        """Non-secret description for logs: user@host:port/database."""
        return f"{self.username}@{self.host}:{self.port}/{self.database}"
