"""Error classification: each AWS or transport failure maps to its own class with a hint."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConfigParseError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidConfigError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)
from secretswap.aws.classify import classify_aws_error, is_retryable

from kb_mcp.errors import (
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsError,
    SecretsUnavailableError,
)

NAME = "kb-mcp/prod/postgres-credentials"
REGION = "eu-west-1"
ENDPOINT = "http://127.0.0.1:4566"


def _client_error(code: str, status: int, message: str = "details") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetSecretValue",
    )


def _classify(exc: BaseException, endpoint: str | None = None) -> SecretsError:
    return classify_aws_error(exc, secret_name=NAME, region=REGION, endpoint_url=endpoint)


@pytest.mark.parametrize(
    ("exc", "cls", "aws_error", "retryable"),
    [
        (_client_error("ResourceNotFoundException", 400), SecretNotFoundError,
         "ResourceNotFoundException", False),
        (_client_error("AccessDeniedException", 400), SecretAccessDeniedError,
         "AccessDeniedException", False),
        (_client_error("403", 403), SecretAccessDeniedError, "AccessDeniedException", False),
        (_client_error("", 403), SecretAccessDeniedError, "AccessDeniedException", False),
        (_client_error("UnrecognizedClientException", 400), SecretAccessDeniedError,
         "UnrecognizedClientException", False),
        (_client_error("DecryptionFailure", 400), SecretAccessDeniedError,
         "DecryptionFailure", False),
        (_client_error("ThrottlingException", 400), SecretsUnavailableError,
         "ThrottlingException", True),
        (_client_error("InternalServiceError", 500), SecretsUnavailableError,
         "InternalServiceError", True),
        (_client_error("", 503), SecretsUnavailableError, "HTTP 503", True),
        (_client_error("", 429), SecretsUnavailableError, "HTTP 429", True),
        (_client_error("InvalidRequestException", 400), SecretAccessDeniedError,
         "InvalidRequestException", False),
        (EndpointConnectionError(endpoint_url=ENDPOINT), SecretsUnavailableError,
         "EndpointConnectionError", True),
        (ConnectTimeoutError(endpoint_url=ENDPOINT), SecretsUnavailableError,
         "ConnectTimeoutError", True),
        (ReadTimeoutError(endpoint_url=ENDPOINT), SecretsUnavailableError,
         "ReadTimeoutError", True),
        (ConnectionRefusedError(111, "refused"), SecretsUnavailableError,
         "ConnectionRefusedError", True),
        (TimeoutError(), SecretsUnavailableError, "TimeoutError", True),
        (NoCredentialsError(), SecretsUnavailableError, "NoCredentialsError", False),
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
         SecretsUnavailableError, "PartialCredentialsError", False),
        (NoRegionError(), SecretsUnavailableError, "NoRegionError", False),
        (ProfileNotFound(profile="missing"), SecretsUnavailableError, "ProfileNotFound", False),
        (ConfigParseError(path="config"), SecretsUnavailableError, "ConfigParseError", False),
        (InvalidConfigError(error_msg="bad"), SecretsUnavailableError, "InvalidConfigError",
         False),
        (InvalidRegionError(region_name="us east"), SecretsUnavailableError,
         "InvalidRegionError", False),
        (SSLError(endpoint_url=ENDPOINT, error="bad"), SecretsUnavailableError,
         "SSLError", True),
        (RuntimeError("odd"), SecretsUnavailableError, "RuntimeError", True),
    ],
)  # fmt: skip
def test_each_failure_maps_to_its_class(
    exc: BaseException, cls: type[SecretsError], aws_error: str, retryable: bool
) -> None:
    """Each failure gets its own class, AWS-terms code, retry decision and an operator hint."""
    error = _classify(exc)
    assert type(error) is cls
    assert error.aws_error == aws_error
    assert is_retryable(error) is retryable
    assert error.secret_name == NAME
    assert error.region == REGION
    assert error.hint
    assert NAME in str(error)


def test_messages_name_region_and_endpoint() -> None:
    """With an endpoint override the message says where it looked: region and endpoint."""
    error = _classify(_client_error("ResourceNotFoundException", 400), ENDPOINT)
    assert str(error) == (
        f"secret {NAME} not found in {REGION} via {ENDPOINT} (ResourceNotFoundException)"
    )
    assert "AWS_REGION" in error.hint


def test_access_denied_hint_points_at_iam() -> None:
    """Access denied says to check the task role's policy, in AWS's own terms."""
    error = _classify(_client_error("403", 403))
    assert "(AccessDeniedException)" in str(error)
    assert "secretsmanager:GetSecretValue" in error.hint
    assert isinstance(error, PermissionError)


def test_aws_error_message_is_not_copied() -> None:
    """The server's free-text message (which could echo anything) is not put in ours."""
    marker = "server-said-" + "x" * 12
    error = _classify(_client_error("ThrottlingException", 400, message=marker))
    assert marker not in str(error)
    assert marker not in error.hint


def test_builtin_mixins() -> None:
    """Callers catching builtins catch ours: not found is a LookupError, unavailable a
    ConnectionError."""
    assert isinstance(_classify(_client_error("ResourceNotFoundException", 400)), LookupError)
    assert isinstance(_classify(NoCredentialsError()), ConnectionError)


def test_a_configuration_error_names_the_profile_or_file_and_what_to_check() -> None:
    """The SDK's configuration errors (raised building a client) are not retried and say
    which profile or file, never the SDK's free text."""
    missing = _classify(ProfileNotFound(profile="kb-staging-sso"))
    assert str(missing) == (
        f"aws configuration error reading secret {NAME} in {REGION} "
        "(ProfileNotFound: profile kb-staging-sso)"
    )
    assert "AWS_PROFILE" in missing.hint
    unparsable = _classify(ConfigParseError(path="/etc/aws/config"))
    assert "(ConfigParseError: path /etc/aws/config)" in str(unparsable)
    marker = "sdk-said-" + "y" * 12
    assert marker not in str(_classify(InvalidConfigError(error_msg=marker)))
