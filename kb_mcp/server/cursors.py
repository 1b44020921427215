"""`kb_list` cursors: opaque, signed, and checked before they reach the database.

A cursor names where the next page starts, `(created_at, id)` of the last document of
the previous page. It is `v1.<payload>.<tag>` in base64url: the payload is the UTC
timestamp in microseconds and the id's 16 bytes, the tag a truncated HMAC-SHA256 of the
payload. Only a cursor this knowledge base issued decodes; anything else (forged, cut,
from another knowledge base) is a bad argument, never a database error.

The key lives in the database (`cursor_keys`, one row, random, made by migration 0002),
so every task behind a load balancer and every restart accepts the cursors of the
others; `CursorSigner` reads it once per process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from kb_mcp.db.models import PageCursor
from kb_mcp.errors import ToolInputError

__all__ = ["MAX_CURSOR_CHARS", "CursorSigner", "decode_cursor", "encode_cursor"]

MAX_CURSOR_CHARS = 128
"""Longer than any cursor kb_list issues (~60 characters)."""
_PREFIX = "v1."
_TAG_BYTES = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAYLOAD = struct.Struct(">q16s")
_BAD = "cursor is not one kb_list returned (start again without a cursor)"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(cursor: PageCursor, *, key: bytes) -> str:
    """The signed cursor string for `kb_list`'s next page."""
    micros = (cursor.created_at - _EPOCH) // timedelta(microseconds=1)
    payload = _PAYLOAD.pack(micros, cursor.id.bytes)
    return f"{_PREFIX}{_b64(payload)}.{_b64(_tag(key, payload))}"


def decode_cursor(value: str | None, *, key: bytes) -> PageCursor | None:
    """The position a cursor names, or None for the first page; `ToolInputError` if forged."""
    if value is None:
        return None
    if len(value) > MAX_CURSOR_CHARS:
        raise ToolInputError(f"cursor is {len(value)} characters; no cursor is longer than 128")
    text = value.strip()
    if not text:
        return None
    if not text.isascii() or not text.startswith(_PREFIX):
        raise ToolInputError(_BAD)
    body, _, tag_text = text[len(_PREFIX) :].partition(".")
    try:
        payload, tag = _unb64(body), _unb64(tag_text)
    except (binascii.Error, ValueError):
        raise ToolInputError(_BAD) from None
    if len(payload) != _PAYLOAD.size or not hmac.compare_digest(tag, _tag(key, payload)):
        raise ToolInputError(_BAD)
    micros, ident = _PAYLOAD.unpack(payload)
    try:
        created_at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise ToolInputError(_BAD) from None
    return PageCursor(created_at=created_at, id=UUID(bytes=ident))


class CursorSigner:
    """Signs and checks cursors with the knowledge base's key, loaded once."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return "CursorSigner(key=<hidden>)"

    async def key(self, load: Callable[[], Awaitable[bytes]]) -> bytes:
        """The signing key, read with `load` on first use."""
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    self._key = await load()
        return self._key
