"""Observability: structlog setup, secret redaction, counters and CloudWatch EMF metrics."""

from kb_mcp.observability.counters import Counter, Gauge, MetricsRegistry
from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.redaction import MASK, SecretValueRegistry, redact_text, secret_registry

__all__ = [
    "MASK",
    "Counter",
    "Gauge",
    "MetricsRegistry",
    "SecretValueRegistry",
    "configure_logging",
    "redact_text",
    "secret_registry",
]
