"""Secret shapes: the base model, two generic ones, and parsing that never shows the input.

Values are `SecretStr`; nothing here has a repr that shows one. Parsing failures become
`SecretFormatError` with a message built from the error locations only, never the input.

    SecretModel        the base: frozen, unknown keys ignored, JSON by default
    ApiKeySecret       a plain string (or `{"api_key": "..."}`): an API key
    JsonSecret[M]      not a class: any `SecretModel` subclass is a JSON secret of that shape
"""

from __future__ import annotations

import json
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from secretswap.errors import SecretFormatError

__all__ = ["ApiKeySecret", "SecretModel", "parse_secret"]


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


class ApiKeySecret(SecretModel):
    """An API key: the secret's plain string (or a JSON object `{"api_key": "..."}`),
    without whitespace. Subclass it to require a minimum length (class variable `min_length`)."""

    min_length: ClassVar[int] = 1
    api_key: SecretStr

    @field_validator("api_key")
    @classmethod
    def _well_formed(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if any(ch.isspace() for ch in key):
            raise ValueError("api key must not contain whitespace")
        if len(key) < cls.min_length:
            raise ValueError(f"api key must be at least {cls.min_length} characters")
        return value

    @classmethod
    def from_secret_string(cls, raw: str) -> ApiKeySecret:
        stripped = raw.strip()
        if stripped.startswith("{"):  # JSON text that opens with "{" is an object or invalid
            return cls.model_validate(json.loads(stripped))
        return cls(api_key=SecretStr(stripped))


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
