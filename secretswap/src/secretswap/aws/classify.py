"""Turn AWS SDK and transport errors into the secretswap error tree, with a hint for operators.

Messages name the secret and the region, never a value, and say what to check next.
"""

from __future__ import annotations

import asyncio

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigParseError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidConfigError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from secretswap.errors import (
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsError,
    SecretsUnavailableError,
)

__all__ = [
    "AWS_CONFIG_ERRORS",
    "AWS_CONFIG_HINT",
    "NOT_FOUND_HINT",
    "RETRYABLE_CODES",
    "classify_aws_error",
    "is_retryable",
]

NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "403",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "DecryptionFailure",
        "KMSAccessDeniedException",
    }
)
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


AWS_CONFIG_ERRORS = (ProfileNotFound, ConfigParseError, InvalidConfigError, InvalidRegionError)
"""Raised when the SDK builds a session or client from the profile, config files and region."""
AWS_CONFIG_HINT = (
    "check AWS_PROFILE (the profile must exist in AWS_CONFIG_FILE or ~/.aws/config; unset it "
    "to use the task role or AWS_ACCESS_KEY_ID), that the AWS config and credentials files "
    "parse, and AWS_REGION"
)
_NOT_RETRYABLE = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "NoRegionError",
        *(error.__name__ for error in AWS_CONFIG_ERRORS),
    }
)
"""Unavailable, but for a reason in this process's configuration: retrying cannot help."""
_CONFIG_DETAIL = {"ProfileNotFound": "profile", "ConfigParseError": "path"}
"""The field of a configuration error worth naming (a profile name, a file path); the
region's own error is named by the region already in the message."""


def _where(region: str, endpoint_url: str | None) -> str:
    return f"{region} via {endpoint_url}" if endpoint_url else region


NOT_FOUND_HINT = (
    "check the secret name and AWS_REGION; for a missing version stage, check the secret's "
    "rotation state (its version stages)"
)
"""The hint of a not-found error, unless the application gives its own (`not_found_hint`)."""


def classify_aws_error(
    exc: BaseException,
    *,
    secret_name: str,
    region: str,
    endpoint_url: str | None,
    not_found_hint: str | None = None,
) -> SecretsError:
    """The `SecretsError` subclass for an exception raised by a Secrets Manager call.

    `not_found_hint`: what a not-found error tells to check (default `NOT_FOUND_HINT`):
    an application that names its secrets by a scheme says so here."""
    where = _where(region, endpoint_url)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in NOT_FOUND_CODES:
            return SecretNotFoundError(
                f"secret {secret_name} not found in {where} ({code})",
                secret_name=secret_name,
                region=region,
                aws_error=code,
                hint=not_found_hint or NOT_FOUND_HINT,
            )
        if code in ACCESS_DENIED_CODES or status == 403:
            shown = "AccessDeniedException" if code in {"403", ""} else code
            return SecretAccessDeniedError(
                f"access denied reading secret {secret_name} in {where} ({shown})",
                secret_name=secret_name,
                region=region,
                aws_error=shown,
                hint=(
                    "check the task role's IAM policy allows secretsmanager:GetSecretValue on "
                    "this secret's ARN (secrets/iam/), kms:Decrypt for a customer-managed key, "
                    "and that the AWS credentials in use are the ones you expect"
                ),
            )
        if code in RETRYABLE_CODES or status >= 500 or status == 429:
            shown = code or f"HTTP {status}"
            return SecretsUnavailableError(
                f"secrets manager kept failing for secret {secret_name} in {where} ({shown})",
                secret_name=secret_name,
                region=region,
                aws_error=shown,
                hint="check the AWS service health and the account's API rate limits",
            )
        return SecretAccessDeniedError(
            f"secrets manager refused to return secret {secret_name} in {where} ({code})",
            secret_name=secret_name,
            region=region,
            aws_error=code or f"HTTP {status}",
            hint="check the secret's state (scheduled for deletion?) and the request parameters",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return SecretsUnavailableError(
            f"no aws credentials to read secret {secret_name} in {where}",
            secret_name=secret_name,
            region=region,
            aws_error=type(exc).__name__,
            hint=(
                "check the ECS task role, or AWS_PROFILE / AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY for local runs"
            ),
        )
    if isinstance(exc, NoRegionError):
        return SecretsUnavailableError(
            f"no aws region configured to read secret {secret_name}",
            secret_name=secret_name,
            region=region,
            aws_error="NoRegionError",
            hint="set AWS_REGION",
        )
    if isinstance(exc, AWS_CONFIG_ERRORS):
        name = type(exc).__name__
        field = _CONFIG_DETAIL.get(name)
        detail = f": {field} {exc.kwargs[field]}" if field and exc.kwargs.get(field) else ""
        return SecretsUnavailableError(
            f"aws configuration error reading secret {secret_name} in {where} ({name}{detail})",
            secret_name=secret_name,
            region=region,
            aws_error=name,
            hint=AWS_CONFIG_HINT,
        )
    if isinstance(
        exc,
        EndpointConnectionError
        | ConnectTimeoutError
        | ReadTimeoutError
        | ConnectionClosedError
        | OSError
        | asyncio.TimeoutError,
    ):
        return SecretsUnavailableError(
            f"secrets manager unreachable reading secret {secret_name} in {where} "
            f"({type(exc).__name__})",
            secret_name=secret_name,
            region=region,
            aws_error=type(exc).__name__,
            hint=(
                "check AWS_ENDPOINT_URL and AWS_REGION, the network route (VPC endpoint or "
                "NAT) to Secrets Manager, and security groups"
            ),
        )
    if isinstance(exc, BotoCoreError):
        return SecretsUnavailableError(
            f"aws sdk error reading secret {secret_name} in {where} ({type(exc).__name__})",
            secret_name=secret_name,
            region=region,
            aws_error=type(exc).__name__,
            hint="check the AWS configuration (region, endpoint, credentials)",
        )
    return SecretsUnavailableError(
        f"unexpected error reading secret {secret_name} in {where} ({type(exc).__name__})",
        secret_name=secret_name,
        region=region,
        aws_error=type(exc).__name__,
        hint="check AWS_ENDPOINT_URL and the network",
    )


def is_retryable(error: SecretsError) -> bool:
    """Unreachable, timed out, throttled or 5xx; not missing credentials or config errors."""
    return isinstance(error, SecretsUnavailableError) and error.aws_error not in _NOT_RETRYABLE
