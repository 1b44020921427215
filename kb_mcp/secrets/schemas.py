"""Typed shapes of the secrets kb-mcp reads, and their parsing.

Values are `SecretStr`; nothing here has a repr that shows one. Parsing failures become
`SecretFormatError` with a message built from the error locations only, never the input.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from kb_mcp.errors import SecretFormatError

__all__ = [
    "AuthTokenSecret",
    "OpenAIKeySecret",
    "PostgresCredentials",
    "SecretModel",
    "parse_secret",
]

OPENAI_KEY_MIN_LENGTH = 20
AUTH_TOKEN_MIN_LENGTH = 24


class SecretModel(BaseModel):
    """Base of every secret shape: frozen, strict, unknown keys ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    @classmethod
    def from_secret_string(cls, raw: str) -> SecretModel:
        """Build the model from the secret's raw string (JSON unless overridden)."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise TypeError("secret json must be an object")
        return cls.model_validate(data)

    def sensitive_values(self) -> tuple[str, ...]:
        """Every value the log redactor must mask once this secret is loaded."""
        return tuple(
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr)
        )


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


M = TypeVar("M", bound=SecretModel)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "value"
        parts.append(f"{where}: {error['msg'].lower()}")
    return "; ".join(parts)


def parse_secret(model: type[M], raw: str, *, secret_name: str, region: str = "") -> M:
    """Parse a raw secret string into `model`; any problem is a `SecretFormatError`.

    The raised error never carries the input: not in its message, and not as `__cause__`
    (pydantic and json errors keep the document they failed on).
    """
    problem: str
    try:
        return model.from_secret_string(raw)  # type: ignore[return-value]
    except json.JSONDecodeError as exc:
        problem = f"is not valid json (line {exc.lineno} column {exc.colno}: {exc.msg.lower()})"
    except ValidationError as exc:
        problem = f"does not match the expected shape ({_describe(exc)})"
    except RecursionError:
        # json.loads recurses once per nesting level: `[[[[...` deep enough blows the stack.
        problem = "is not valid json (nested too deeply)"
    except (TypeError, ValueError) as exc:
        # Our own messages, or Python's integer-size limit; none of them quotes the input.
        problem = f"does not match the expected shape ({str(exc).lower()})"
    keys = ", ".join(name for name, field in model.model_fields.items() if field.is_required())
    where = f" in {region}" if region else ""
    raise SecretFormatError(
        f"secret {secret_name}{where} {problem}",
        secret_name=secret_name,
        region=region,
        aws_error="MalformedSecret",
        hint=f"check the secret's value: expected {model.__name__} with keys: {keys}",
    ) from None
