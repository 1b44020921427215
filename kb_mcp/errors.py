"""The exception tree of kb-mcp and the process exit codes.

Every error kb-mcp raises derives from `KbMcpError`. Builtins are mixed in where a
caller would reasonably catch the builtin (a malformed secret is a `ValueError`). The
classes marked (secretswap) are the hot-swap library's, re-exported: `KbMcpError` is its
base, `secretswap.SwapError`, so they are kb-mcp errors like any other.

    KbMcpError (secretswap.SwapError)
    ├── ConfigError (ValueError)                 an invalid setting; names the variable
    ├── SecretsError (secretswap)                anything about reading a secret
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
    ├── RotationError (secretswap)               a new secret version failed validation; the old
    │                                            resource keeps serving
    ├── AuthFailed (secretswap)                  the hot-swap core: credentials in service were
    │                                            refused and no newer version helped; adapters
    │                                            raise their own (DatabaseAuthError...) from it
    ├── ResourceClosedError (RuntimeError, secretswap)
    │                                            a holder was used after aclose()
    ├── DeadlineExceededError (TimeoutError)     a request ran out of its budget; `outcome`
    │                                            says how far its writes got
    └── ToolInputError (ValueError)              an MCP tool argument was rejected

Messages are lowercase, name the secret and the region, never a secret value, and for
startup failures say what to check next (`hint`).
"""

from __future__ import annotations

import sys

from secretswap.errors import (
    AuthFailed,
    ResourceClosedError,
    RotationError,
    SecretAccessDeniedError,
    SecretFormatError,
    SecretNotFoundError,
    SecretsError,
    SecretsUnavailableError,
    SwapError,
)

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


KbMcpError = SwapError
"""Base class of every kb-mcp error: the hot-swap library's own base (`secretswap.SwapError`),
so that its errors (secrets, rotation, auth failure, closed resource) are kb-mcp's too.
`hint` says what an operator should check next; it is printed with startup failures."""


class ConfigError(KbMcpError, ValueError):
    """An environment variable or option has an invalid value."""

    def __init__(self, message: str, *, variable: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.variable = variable


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
