"""AWS SDK and transport errors as the error tree: `secretswap.aws.classify`, under
kb-mcp's name (the ops client uses its configuration errors and hint too)."""

from secretswap.aws.classify import (
    AWS_CONFIG_ERRORS,
    AWS_CONFIG_HINT,
    RETRYABLE_CODES,
    classify_aws_error,
    is_retryable,
)

__all__ = [
    "AWS_CONFIG_ERRORS",
    "AWS_CONFIG_HINT",
    "RETRYABLE_CODES",
    "classify_aws_error",
    "is_retryable",
]
