"""Fake credentials built at run time, and the suite-wide set of values that must never leak.

Nothing here is a literal credential: every value is generated per run. Each generated
value is remembered in `WATCHED`, which the leak guard in `tests/conftest.py` checks every
captured log line against.
"""

from __future__ import annotations

import json
import secrets
import string

__all__ = [
    "WATCHED",
    "fake_auth_token",
    "fake_openai_key",
    "fake_password",
    "postgres_secret_json",
    "watch",
]

WATCHED: set[str] = set()


def watch(*values: str) -> None:
    """Add values that must never appear in any captured log line."""
    WATCHED.update(v for v in values if len(v) >= 6)


def fake_openai_key() -> str:
    """A key of OpenAI's shape, random per run."""
    alphabet = string.ascii_letters + string.digits
    key = "sk-" + "test-" + "".join(secrets.choice(alphabet) for _ in range(40))
    watch(key)
    return key


def fake_password() -> str:
    """A strong random password."""
    value = "pw-" + secrets.token_urlsafe(24)
    watch(value)
    return value


def fake_auth_token() -> str:
    """A bearer token for the HTTP transport."""
    value = "tok-" + secrets.token_urlsafe(32)
    watch(value)
    return value


def postgres_secret_json(
    *, username: str, password: str, host: str, port: int | str, database: str
) -> str:
    """The PostgreSQL credentials secret as AWS stores it."""
    watch(password)
    return json.dumps(
        {
            "username": username,
            "password": password,
            "host": host,
            "port": port,
            "database": database,
        }
    )
