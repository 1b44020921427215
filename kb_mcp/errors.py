"""The exception tree of kb-mcp and the process exit codes.

Every error kb-mcp raises derives from `KbMcpError`. Builtins are mixed in where a
caller would reasonably catch the builtin (a malformed secret is a `ValueError`).

    KbMcpError
    ├── ConfigError (ValueError)                 an invalid setting; names the variable
    ├── SecretsError                             anything about reading a secret
    │   ├── SecretNotFoundError (LookupError)    ResourceNotFoundException, or a missing stage
    │   ├── SecretAccessDeniedError (PermissionError)
    │   │                                        AccessDeniedException, HTTP 403, bad signature,
    │   │                                        KMS decryption refused
    │   ├── SecretsUnavailableError (ConnectionError)
    │   │                                        no credentials, endpoint unreachable, timeout,
    │   │                                        5xx or throttling after the retry budget
    │   └── SecretFormatError (ValueError)       not JSON, missing key, wrong type, too short
    ├── DatabaseError                            PostgreSQL could not serve a request
    │   ├── DatabaseAuthError                    SQLSTATE 28P01 / 28000 after refresh and retry
    │   ├── DatabaseUnavailableError (ConnectionError)
    │   └── DatabaseOutcomeUnknownError          the connection died during COMMIT: the write
    │                                            may or may not have been stored
    ├── EmbeddingError                           the embeddings endpoint failed
    │   └── EmbeddingAuthError                   401 after refresh and retry
    ├── RotationError                            a new secret version failed validation; the old
    │                                            resource keeps serving
    ├── AuthFailed                               the hot-swap core: credentials in service were
    │                                            refused and no newer version helped; adapters
    │                                            raise their own (DatabaseAuthError...) from it
    ├── ResourceClosedError (RuntimeError)       a holder was used after aclose()
    ├── DeadlineExceededError (TimeoutError)     a request ran out of its budget; `outcome`
    │                                            says how far its writes got
    └── ToolInputError (ValueError)              an MCP tool argument was rejected

Messages are lowercase, name the secret and the region, never a secret value, and for
startup failures say what to check next (`hint`).
"""

from __future__ import annotations

import sys
from typing import Any

EXIT_OK = 0
EXIT_STARTUP_FAILURE = 1
EXIT_USAGE = 2

__all__ = [
    "EXIT_OK",
    "EXIT_STARTUP_FAILURE",
    "EXIT_USAGE",
    "AuthFailed",
    "ConfigError",
    "DatabaseAuthError",
    "DatabaseError",
    "DatabaseOutcomeUnknownError",
    "DatabaseUnavailableError",
    "DeadlineExceededError",
    "EmbeddingAuthError",
    "EmbeddingError",
    "KbMcpError",
    "ResourceClosedError",
    "RotationError",
    "SecretAccessDeniedError",
    "SecretFormatError",
    "SecretNotFoundError",
    "SecretsError",
    "SecretsUnavailableError",
    "ToolInputError",
    "report_startup_failure",
]


class KbMcpError(Exception):
    """Base class of every kb-mcp error.

    `hint` says what an operator should check next; it is printed with startup failures.
    """

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(KbMcpError, ValueError):
    """An environment variable or option has an invalid value."""

    def __init__(self, message: str, *, variable: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.variable = variable


class SecretsError(KbMcpError):
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
    """Secrets Manager could not be reached or kept failing within the retry budget."""


class SecretFormatError(SecretsError, ValueError):
    """The secret's value does not have the expected shape."""


class DatabaseError(KbMcpError):
    """PostgreSQL could not serve a request."""


class DatabaseAuthError(DatabaseError):
    """PostgreSQL refused the credentials, even after a refresh and one retry."""


class DatabaseUnavailableError(DatabaseError, ConnectionError):
    """PostgreSQL could not be reached."""


class DatabaseOutcomeUnknownError(DatabaseError):
    """The connection was lost during COMMIT: whether the write was stored is unknown."""


class EmbeddingError(KbMcpError):
    """The embeddings endpoint failed. `status`: its HTTP status, when it answered one."""

    def __init__(self, message: str, *, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class EmbeddingAuthError(EmbeddingError):
    """The embeddings endpoint refused the API key, even after a refresh and one retry."""


class RotationError(KbMcpError):
    """A new secret version could not be put into service; the old resource stays."""

    def __init__(self, message: str, *, secret_name: str, version_id: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.secret_name = secret_name
        self.version_id = version_id


class AuthFailed(KbMcpError):
    """Credentials of the version in service were refused and no newer version helped.

    Raised by the hot-swap core (`HotSwap.run`): `generation` is the refused generation
    (`kb_mcp.hotswap.Generation`), the adapter's exception is `__cause__`. Adapters turn it
    into their own error (`DatabaseAuthError`, `EmbeddingAuthError`).
    """

    def __init__(
        self, message: str, *, secret_name: str, version_id: str, generation: Any = None
    ) -> None:
        super().__init__(message)
        self.secret_name = secret_name
        self.version_id = version_id
        self.generation = generation


class ResourceClosedError(KbMcpError, RuntimeError):
    """A holder or manager was used after it was closed."""


class DeadlineExceededError(KbMcpError, TimeoutError):
    """A unit of work ran out of its budget (`kb_mcp.deadline`) and was cancelled.

    `outcome`: "nothing" (no write committed), "unknown" (cut off during a COMMIT),
    "stored" (committed; only the answer was late).
    """

    def __init__(self, message: str, *, budget_s: float, outcome: str = "nothing") -> None:
        super().__init__(message)
        self.budget_s = budget_s
        self.outcome = outcome


class ToolInputError(KbMcpError, ValueError):
    """An MCP tool argument was rejected."""


def report_startup_failure(exc: KbMcpError, *, what: str = "startup") -> None:
    """A short human line (and what to check) on stderr; the structured event is logged.

    `what` names what failed: the server's startup, or a command (`secrets age`)."""
    sys.stderr.write(f"kb-mcp: {what} failed: {exc}\n")
    if exc.hint:
        sys.stderr.write(f"kb-mcp: hint: {exc.hint}\n")
    sys.stderr.flush()
