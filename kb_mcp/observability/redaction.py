"""Redaction of secret values from everything the process logs.

Two layers, both applied to every event:

1. by key: values under secret-looking keys (password, api_key, secret, token,
   authorization, dsn, ...) are replaced, at any depth of the event;
2. by value: every secret value the process has loaded is replaced wherever it appears,
   in any string of the event (exception text included) and in the rendered line.

Loaded values live in one process-wide `SecretValueRegistry`. It is the single piece of
module-level state in kb-mcp, for the same reason logging configuration is global: a
value loaded by any component must be masked in the output of every other.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = [
    "MASK",
    "SecretValueRegistry",
    "is_sensitive_key",
    "redact_event",
    "redact_text",
    "secret_registry",
]

MASK = "***"
MIN_SECRET_LENGTH = 6
MAX_DEPTH = 16
DEPTH_LIMIT_MARKER = "[redacted: nested too deep]"

_SENSITIVE_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|authorization|auth[_-]?header|dsn|credential"
    r"|private[_-]?key|session[_-]?key|cookie)",
    re.IGNORECASE,
)
# Keys that contain a sensitive word but only describe a secret, never hold one.
_SAFE_KEYS = frozenset(
    {
        "secret",
        "secret_name",
        "secret_names",
        "secrets",
        "token_secret",
        "auth_token_secret",
        "secret_arn",
        "version_id",
        "token_source",
        "password_changed",
    }
)
# Secret-looking shapes masked even when not registered (a value the process never loaded,
# such as a key pasted into an error): OpenAI keys, AWS access keys, DSN passwords.
_SHAPES = (
    re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?<=://)([^:/@\s]+):([^@\s]+)(?=@)"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=\-]{8,}"),
)
_SHAPE_REPLACEMENTS = (MASK, MASK, r"\1:" + MASK, "Bearer " + MASK)


class SecretValueRegistry:
    """The set of secret values this process has loaded, for masking in output."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._ordered: tuple[str, ...] = ()

    def register(self, *values: str) -> None:
        """Remember values to mask; short values are ignored (they would mask noise)."""
        fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
        if not fresh - self._values:
            return
        with self._lock:
            self._values = self._values | fresh
            # Longest first, so a value containing another is masked whole.
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def register_secret_string(self, raw: str) -> None:
        """Register a raw secret: the whole string, and for JSON its sensitive fields."""
        self.register(raw, raw.strip())
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if isinstance(data, dict):
            self.register(
                *(str(v) for k, v in data.items() if is_sensitive_key(str(k)) and v is not None)
            )

    def values(self) -> frozenset[str]:
        """Every registered value (for leak checks in tests)."""
        return self._values

    def clear(self) -> None:
        with self._lock:
            self._values = frozenset()
            self._ordered = ()

    def mask(self, text: str) -> str:
        """Replace every registered value and every secret-looking shape in `text`."""
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        for pattern, replacement in zip(_SHAPES, _SHAPE_REPLACEMENTS, strict=True):
            text = pattern.sub(replacement, text)
        return text


_REGISTRY = SecretValueRegistry()


def secret_registry() -> SecretValueRegistry:
    """The process-wide registry of loaded secret values."""
    return _REGISTRY


def is_sensitive_key(key: str) -> bool:
    """True for keys whose values must never be logged.

    A key with a `/` in it is a resource name used as a key (a secret's name, such as
    `kb-mcp/prod/postgres-credentials`, mapping to its version id), not a field name.
    """
    return "/" not in key and key.lower() not in _SAFE_KEYS and bool(_SENSITIVE_KEY.search(key))


def redact_text(text: str, registry: SecretValueRegistry | None = None) -> str:
    """Mask loaded values and secret-looking shapes in a string."""
    return (registry or _REGISTRY).mask(text)


def _redact(value: Any, registry: SecretValueRegistry, depth: int) -> Any:
    if isinstance(value, str):
        return registry.mask(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if depth > MAX_DEPTH:
        # Past the limit nothing is inspected, so nothing is emitted: a sensitive key at
        # depth 17 must not come out in clear.
        return DEPTH_LIMIT_MARKER
    if isinstance(value, Mapping):
        return {
            k: (MASK if is_sensitive_key(str(k)) and v else _redact(v, registry, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v, registry, depth + 1) for v in value]
    # Any other object is rendered with str/repr by the renderer: mask that text now.
    return registry.mask(str(value))


def redact_event(
    event: MutableMapping[str, Any], registry: SecretValueRegistry | None = None
) -> MutableMapping[str, Any]:
    """Redact an event dict in place: sensitive keys masked, loaded values replaced."""
    reg = registry or _REGISTRY
    for key in list(event):
        value = event[key]
        if is_sensitive_key(key) and value:
            event[key] = MASK
        else:
            event[key] = _redact(value, reg, 0)
    return event
