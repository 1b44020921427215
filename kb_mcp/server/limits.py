"""Connection and request limits for the HTTP transport: no client can hold the server.

uvicorn on its own keeps every accepted connection until the client leaves: an idle
connection, one that sends its headers a byte a minute, or a body that never ends all
stay open, and the open-file limit is the only cap. `HttpLimits` sets what a production
server sets:

- `max_connections`: a connection beyond it closes an idle one (the oldest of the peer
  holding the most) or, when none is idle, is closed itself (`kb_mcp.server.connections`:
  idle connections from one peer cannot lock out health checks or other clients);
  uvicorn's `limit_concurrency` (twice the cap) answers 503 beyond it;
- `header_timeout_s`: a connection that has not sent a complete request head this long
  after connecting, or after its previous response, is closed (`guarded_protocol`);
- `keep_alive_s`: an idle keep-alive connection is closed (uvicorn's timer);
- `max_header_bytes`: h11's cap on an incomplete request head (431/400 beyond it);
- `body_timeout_s` and `max_body_bytes`: `BodyLimits` reads the whole body within the
  deadline before the app sees the request, answering 408 (too slow) or 413 (too large),
  with `Connection: close`. uvicorn has no body timeout of its own. A body over the cap
  is read to its end and discarded (up to `max_drain_bytes`, within the same deadline)
  before the 413: a server that answers and closes while the client is still sending
  makes the client's socket fail (the official Python MCP client then loses its whole
  session); read to the end, both official SDKs report the error for that call and go on.
  Refusals carry a JSON-RPC error (`kb_mcp.server.jsonrpc.error_body`), which the SDKs
  show as the call's error message.
- `max_json_values`: the MCP SDK validates a JSON-RPC message with pydantic at about
  240 ms per MB of small values (a 4 MiB body of 400k tags would hold the event loop for
  a second), so `too_many_json_values` refuses a body with more values than any tool
  takes (32 tags, 16 KB of metadata) with 400, by a scan that stops at the limit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb_mcp.server.connections import guarded_protocol
from kb_mcp.server.jsonrpc import INVALID_REQUEST, send_error

__all__ = ["BodyLimits", "HttpLimits", "guarded_protocol"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Limits of one HTTP server; the defaults suit one ECS task behind a load balancer."""

    max_connections: int = 256
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 4 * 1024 * 1024
    """The MCP SDK's own message limit; refused here before it is buffered."""
    max_drain_bytes: int = 16 * 1024 * 1024
    """How much of an oversized body is read and discarded so the client hears the 413."""
    max_json_values: int = 10_000
    """Commas outside strings (about the number of JSON values) one request may hold."""

    def uvicorn_options(self, protocol: type[Any]) -> dict[str, Any]:
        """Keyword arguments for `uvicorn.Config`: the guarded protocol and the limits."""
        return {
            "http": guarded_protocol(
                protocol,
                max_connections=self.max_connections,
                header_timeout_s=self.header_timeout_s,
            ),
            # uvicorn answers 503 at `limit_concurrency` open connections or requests. A
            # connection closed to make room stays in its count until the loop reports it
            # lost, so the newcomer's request would get 503: the backstop sits at twice the cap.
            "limit_concurrency": 2 * self.max_connections + 1,
            "timeout_keep_alive": max(1, round(self.keep_alive_s)),
            "h11_max_incomplete_event_size": self.max_header_bytes,
        }


class BodyLimits:
    """ASGI middleware: read a request body within a deadline and a size cap, then replay it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_timeout_s: float,
        max_body_bytes: int,
        max_json_values: int = 10_000,
        max_drain_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._app = app
        self._timeout_s = body_timeout_s
        self._max = max_body_bytes
        self._max_values = max_json_values
        self._max_drain = max(max_drain_bytes, max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max_drain:
            log.info("http.body_refused", reason="too_large", declared=declared, drained=False)
            await _refuse(send, 413, self._too_large)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_drain:
                        break
                    if size <= self._max:
                        chunks.append(chunk)
                    elif chunks:
                        chunks.clear()  # over the cap: read on, keep nothing
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            if size <= self._max:
                log.info("http.body_timeout", timeout_s=self._timeout_s, received_bytes=size)
                await _refuse(send, 408, "request body not received in time")
                return
        if size > self._max:
            drained = size <= self._max_drain
            log.info("http.body_refused", reason="too_large", size=size, drained=drained)
            await _refuse(send, 413, self._too_large)
            return
        body = b"".join(chunks)
        if too_many_json_values(body, self._max_values):
            log.info("http.body_refused", reason="too_many_json_values", size=size)
            await _refuse(
                send,
                400,
                f"request holds more than {self._max_values} JSON values; no tool takes that "
                "many (at most 32 tags and 16 KB of metadata)",
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    @property
    def _too_large(self) -> str:
        return f"request body too large: at most {self._max} bytes"


def too_many_json_values(body: bytes, limit: int) -> bool:
    """True when `body` has more than `limit` commas outside strings (or is too intricate).

    The scan costs at most ~4 * `limit` steps whatever the body's size: commas between
    strings are counted by `bytes.count`, each string is skipped by `bytes.find`, and a
    body that spends the step budget on strings or escaped quotes is refused as well.
    """
    budget = 4 * limit
    commas = 0
    pos, end = 0, len(body)
    while True:
        quote = body.find(b'"', pos)
        stop = end if quote == -1 else quote
        commas += body.count(b",", pos, stop)
        if commas > limit:
            return True
        if quote == -1:
            return False
        pos = quote + 1
        while True:  # inside a string: find its closing quote
            quote = body.find(b'"', pos)
            if quote == -1:
                return False  # malformed: the SDK reports the parse error
            slashes = 0
            while slashes <= budget and body[quote - 1 - slashes] == 0x5C:
                slashes += 1
            budget -= 1 + slashes
            if budget < 0:
                return True
            pos = quote + 1
            if slashes % 2 == 0:
                break


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    await send_error(send, status, INVALID_REQUEST, detail)
