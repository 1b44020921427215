"""JSON-RPC framing on `/mcp` that the MCP SDK leaves open: request ids, refusals' shape.

The SDK validates a POSTed message as a request, a notification or a response, in that
order; a message whose `id` is not a valid request id (an object, an array, a boolean, a
fraction, null) fails as a request and then passes as a notification, and is answered
202 with no body: the client waits for an answer that never comes. JSON-RPC 2.0 allows
"a String, Number, or NULL" and asks that numbers have no fractional part; MCP narrows it
to a string or an integer, never null. `JsonRpcIds` answers such a message with an
Invalid Request error (-32600, `id` null as JSON-RPC asks when the id cannot be read),
HTTP 400, before the SDK sees it.

`error_body` is the one shape of every refusal on `/mcp` made outside the SDK
(`kb_mcp.server.limits` uses it for 408, 413 and too many JSON values): the official
clients surface a JSON-RPC error carried by a 4xx answer as that call's error, with its
message, where a body of another shape becomes a bare "Server returned an error response".
"""

from __future__ import annotations

import json

import pydantic_core
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["INVALID_REQUEST", "JsonRpcIds", "error_body", "id_problem", "send_error"]

log = structlog.get_logger(__name__)

INVALID_REQUEST = -32600
_TYPE_NAMES = {dict: "an object", list: "an array", bool: "a boolean", float: "a fraction"}


def error_body(code: int, message: str) -> bytes:
    """A JSON-RPC error response with a null id (the request's id is not known or not valid)."""
    document = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return json.dumps(document).encode()


def id_problem(body: bytes) -> str | None:
    """What is wrong with the `id` of the JSON-RPC message in `body`, or None.

    None as well for a body that is not a JSON object (the SDK reports parse errors and
    batches itself) and for a message without an `id` (a notification).
    """
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or "id" not in message:
        return None
    ident = message["id"]
    if isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool)):
        return None
    kind = "null" if ident is None else _TYPE_NAMES.get(type(ident), type(ident).__name__)
    return f"Invalid Request: id must be a string or an integer, not {kind}"


async def send_error(send: Send, status: int, code: int, message: str) -> None:
    """Answer `status` with a JSON-RPC error body and `Connection: close`."""
    body = error_body(code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class JsonRpcIds:
    """ASGI middleware on POST `/mcp`: a message whose id is neither string nor integer gets -32600.

    Expects the whole body in the first `http.request` message (`BodyLimits` runs first
    and replays it so); it is passed on to the app unchanged.
    """

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self._app = app
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope["path"] != self._path:
            await self._app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "http.request" and not first.get("more_body", False):
            problem = id_problem(first.get("body", b""))
            if problem is not None:
                log.info("http.jsonrpc_refused", reason="invalid_id", detail=problem)
                await send_error(send, 400, INVALID_REQUEST, problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        await self._app(scope, replay, send)
