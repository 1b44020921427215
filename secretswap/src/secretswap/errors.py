"""The exception tree of secretswap.

Every error the library raises derives from `SwapError`; builtins are mixed in where a
caller would reasonably catch the builtin (a malformed secret is a `ValueError`).

    SwapError                                    `message`, and `hint`: what to check next
    ├── SecretsError                             reading a secret failed (`secret_name`,
    │   │                                        `region`, `aws_error`)
    │   ├── SecretNotFoundError (LookupError)    the secret, or the requested stage, is absent
    │   ├── SecretAccessDeniedError (PermissionError)
    │   ├── SecretsUnavailableError (ConnectionError)
    │   └── SecretFormatError (ValueError)       not JSON, missing key, wrong type, too short
    ├── RotationError                            a new version could not be put into service;
    │                                            the old resource keeps serving
    ├── AuthFailed                               credentials in service were refused and no
    │                                            newer version helped
    └── ResourceClosedError (RuntimeError)       a resource was used after it was closed

Messages name the secret, never a secret value.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthFailed",
    "ResourceClosedError",
    "RotationError",
    "SecretAccessDeniedError",
    "SecretFormatError",
    "SecretNotFoundError",
    "SecretsError",
    "SecretsUnavailableError",
    "SwapError",
]


class SwapError(Exception):
    """Base class of every secretswap error. `hint` says what to check next."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class SecretsError(SwapError):
    """Reading a secret failed. Carries the secret's name, the region and the AWS error code."""

    def __init__(
        self,
        message: str,
        *,
        secret_name: str,
        region: str = "",
        aws_error: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.secret_name = secret_name
        self.region = region
        self.aws_error = aws_error


class SecretNotFoundError(SecretsError, LookupError):
    """The secret (or the requested version stage) does not exist."""


class SecretAccessDeniedError(SecretsError, PermissionError):
    """The caller's identity may not read the secret."""


class SecretsUnavailableError(SecretsError, ConnectionError):
    """The secret store could not be reached or kept failing within the retry budget."""


class SecretFormatError(SecretsError, ValueError):
    """The secret's value does not have the expected shape."""


class RotationError(SwapError):
    """A new secret version could not be put into service; the old resource stays."""

    def __init__(self, message: str, *, secret_name: str, version_id: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.secret_name = secret_name
        self.version_id = version_id


class AuthFailed(SwapError):
    """Credentials of the version in service were refused and no newer version helped.

    Raised by `HotSwap.run`: `generation` is the refused generation, the adapter's
    exception is `__cause__`. An application may turn it into its own error.
    """

    def __init__(
        self, message: str, *, secret_name: str, version_id: str, generation: Any = None
    ) -> None:
        super().__init__(message)
        self.secret_name = secret_name
        self.version_id = version_id
        self.generation = generation


class ResourceClosedError(SwapError, RuntimeError):
    """A holder or manager was used after it was closed."""
