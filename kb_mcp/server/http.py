"""The HTTP app: streamable MCP at `/mcp` (stateless), `/healthz` and `/readyz`.

`/mcp` runs in stateless mode with JSON responses: no session lives in a process, so any
task behind a load balancer can answer any request. It takes POST only: a `GET` would
open an event stream that, with no session to speak for, could only send pings forever,
so it is refused with 405 (what the MCP specification allows a server that offers no
stream); every other method likewise.

`AccessGuard` wraps the whole app, so no route (health checks included) answers before
it: exactly one Host header, allowed (else 421), at most one Origin, allowed (403)
(DNS-rebinding protection: a rebinding page learns nothing, not even readiness), and on
`/mcp` the bearer token (401 with `WWW-Authenticate: Bearer`; logged as
`http.auth_rejected` with the client address and the reason, never the token). No path is
redirected (`/mcp/` is 404, not a 307 to a Host the client chose). The SDK's own
Host/Origin check is turned off because this one runs first and knows the bind.
`BodyLimits` (kb_mcp.server.limits) then reads the body within its deadline and size,
and `JsonRpcIds` (kb_mcp.server.jsonrpc) refuses a message whose id is not a string or an
integer with -32600 (the SDK would take it for a notification and answer 202, no body).

`/healthz` answers 200 while the process serves; `/readyz` answers 200 only when the
readiness check says ready, 503 otherwise, with a JSON body naming secret versions and
ages and the database state, never a value. Neither needs a token.

The app's lifespan runs the MCP session manager (which enters the MCP server's own
lifespan, yielding the `AppContext`); a session manager runs once, so build a new app
(and MCP server) for every start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kb_mcp.server.auth import BearerAuth, OriginPolicy, check_bind_policy
from kb_mcp.server.context import Readiness
from kb_mcp.server.jsonrpc import JsonRpcIds
from kb_mcp.server.limits import BodyLimits, HttpLimits

__all__ = ["AccessGuard", "McpAccessGuard", "build_http_app", "check_bind_policy"]

log = structlog.get_logger(__name__)

MCP_PATH = "/mcp"
_NO_STORE = {"Cache-Control": "no-store"}


class AccessGuard:
    """ASGI wrapper: Host, then Origin, on every path; then on `/mcp` the bearer token."""

    def __init__(self, app: ASGIApp, *, auth: BearerAuth | None, policy: OriginPolicy) -> None:
        self._app = app
        self._auth = auth
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = await self._refusal(scope, headers)
        if refusal is not None:
            refusal.headers["connection"] = "close"
            await refusal(scope, receive, send)
            return
        await self._app(scope, receive, send)

    async def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        client = _client(scope)
        hosts, origins = headers.getlist("host"), headers.getlist("origin")
        if len(hosts) != 1 or len(origins) > 1:
            log.warning(
                "http.headers_rejected", client=client, hosts=len(hosts), origins=len(origins)
            )
            return JSONResponse(
                {"error": "bad_request", "detail": "exactly one Host and at most one Origin"},
                status_code=400,
            )
        if not self._policy.host_allowed(hosts[0]):
            log.warning("http.host_rejected", client=client, host=hosts[0][:256])
            return JSONResponse(
                {"error": "misdirected_request", "detail": "host not allowed"}, status_code=421
            )
        origin = origins[0] if origins else None
        if not self._policy.origin_allowed(origin):
            log.warning("http.origin_rejected", client=client, origin=(origin or "")[:256])
            return JSONResponse(
                {"error": "forbidden", "detail": "origin not allowed"}, status_code=403
            )
        if scope.get("path") != MCP_PATH:
            return None
        if self._auth is not None:
            reason = await self._auth.check(headers.get("authorization"))
            if reason is not None:
                return _unauthorized(scope, headers, client, reason)
        if scope.get("method") != "POST":
            return JSONResponse(
                {
                    "error": "method_not_allowed",
                    "detail": "stateless server: POST JSON-RPC messages; no event stream",
                },
                status_code=405,
                headers={"Allow": "POST"},
            )
        return None


McpAccessGuard = AccessGuard
"""The former name, from when the guard covered `/mcp` only."""


def _unauthorized(scope: Scope, headers: Headers, client: str | None, reason: str) -> Response:
    log.warning(
        "http.auth_rejected",
        client=client,
        forwarded_for=headers.get("x-forwarded-for"),
        reason=reason,
        method=scope.get("method"),
        path=scope.get("path"),
    )
    challenge = 'Bearer realm="kb-mcp"'
    if reason == "invalid":
        challenge += ', error="invalid_token"'
    return JSONResponse(
        {"error": "unauthorized", "detail": f"{reason} bearer token"},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


def build_http_app(
    mcp_server: MCPServer[Any],
    *,
    readiness: Readiness,
    auth: BearerAuth | None,
    policy: OriginPolicy,
    limits: HttpLimits | None = None,
) -> ASGIApp:
    """The app serving `/mcp`, `/healthz` and `/readyz`, behind the access guard."""
    limits = limits or HttpLimits()
    mcp_server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    session_manager = mcp_server.session_manager

    mcp_endpoint = _SessionEndpoint(session_manager)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(_request: Request) -> Response:
        try:
            report = await readiness()
        except Exception as exc:  # readiness reports any failure as a state, never raises
            log.warning("http.readiness_failed", error=type(exc).__name__)
            return JSONResponse(
                {"status": "not_ready", "detail": type(exc).__name__},
                status_code=503,
                headers=_NO_STORE,
            )
        return JSONResponse(
            report.to_json(), status_code=200 if report.ready else 503, headers=_NO_STORE
        )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with session_manager.run():
            log.debug("http.mcp_session_manager_started")
            yield

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route(MCP_PATH, mcp_endpoint),
        ],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    bounded = BodyLimits(
        JsonRpcIds(app, path=MCP_PATH),
        body_timeout_s=limits.body_timeout_s,
        max_body_bytes=limits.max_body_bytes,
        max_json_values=limits.max_json_values,
        max_drain_bytes=limits.max_drain_bytes,
    )
    return AccessGuard(bounded, auth=auth, policy=policy)


class _SessionEndpoint:
    """The MCP session manager as a raw ASGI endpoint (Starlette passes any method)."""

    def __init__(self, session_manager: Any) -> None:
        self._session_manager = session_manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._session_manager.handle_request(scope, receive, send)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    if not client:
        return None
    host, port = client[0], client[1]
    return f"{host}:{port}"
