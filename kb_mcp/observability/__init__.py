"""Observability: structlog setup, secret redaction, CloudWatch EMF metrics and the hot-swap
counters (`swap_metrics`). The in-process registry is the library's (`secretswap.metrics`)."""

from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.redaction import MASK, SecretValueRegistry, redact_text, secret_registry

__all__ = [
    "MASK",
    "SecretValueRegistry",
    "configure_logging",
    "redact_text",
    "secret_registry",
]
