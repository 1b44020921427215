"""SQL text for role management: identifier and literal quoting, SCRAM verifiers.

Used wherever kb-mcp runs role DDL (CREATE/ALTER ROLE cannot take bind parameters): the
rotation tooling and the local stack. A password is sent as its SCRAM-SHA-256 verifier,
so the server never sees it, and never logs it on an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["password_literal", "quote_ident", "quote_literal", "scram_verifier"]


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (role, database) so any name is taken literally."""
    if not name or "\x00" in name:
        raise ValueError("identifier must be non-empty and free of nul characters")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote an SQL string literal, as PostgreSQL's ``quote_literal`` does."""
    if "\x00" in value:
        raise ValueError("literal must be free of nul characters")
    body = value.replace("'", "''")
    if "\\" in value:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """Return the SCRAM-SHA-256 verifier PostgreSQL stores for an ASCII ``password``."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def password_literal(password: str) -> str:
    """The SQL literal to put after ``PASSWORD``: a verifier for ASCII passwords."""
    # SASLprep leaves ASCII unchanged, so a verifier built here is exact and the
    # server never sees (nor logs, on an error) the password itself.
    if not password:
        raise ValueError("password must not be empty")
    return quote_literal(scram_verifier(password) if password.isascii() else password)
