"""The HTTP app on a real uvicorn server: MCP over streamable HTTP, health, tokens, origins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import TextContent
from pydantic import SecretStr
from secretswap.port import CacheEntryStatus

from kb_mcp.server.auth import BearerAuth, OriginPolicy
from kb_mcp.server.context import ReadinessReport
from kb_mcp.server.http import build_http_app
from kb_mcp.server.tools import build_mcp_server
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_auth_token
from tests.support.knowledge_base import CORPUS, KbStack, serve_asgi
from tests.support.readiness import ReadinessSnapshot

_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
_MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@dataclass
class Switchboard:
    """What the test changes while the server runs: readiness and the accepted tokens."""

    tokens: list[SecretStr] = field(default_factory=list)
    report: ReadinessSnapshot = field(default_factory=lambda: ReadinessSnapshot(ready=True))
    readiness_fails: bool = False

    async def readiness(self) -> ReadinessReport:
        if self.readiness_fails:
            raise RuntimeError("probe failed")
        return self.report


@asynccontextmanager
async def _serving(kb: KbStack, board: Switchboard, *, auth: bool = True) -> AsyncIterator[str]:
    """A fresh MCP server and HTTP app for `kb`, served on 127.0.0.1; yields the base URL."""
    app = build_http_app(
        build_mcp_server(kb.context),
        readiness=board.readiness,
        auth=BearerAuth(lambda: tuple(board.tokens)) if auth else None,
        policy=OriginPolicy.for_bind("127.0.0.1"),
    )
    async with serve_asgi(app) as base:
        yield base


@asynccontextmanager
async def _mcp(base: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client


async def _post_initialize(base: str, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(f"{base}/mcp", json=_INITIALIZE, headers=_MCP_HEADERS | headers)


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, [c.text for c in result.content if isinstance(c, TextContent)]
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_tools_work_over_streamable_http(kb: KbStack) -> None:
    """add, search (right document first), get, list, delete and a tool error, over HTTP."""
    token = fake_auth_token()
    board = Switchboard(tokens=[SecretStr(token)])
    async with _serving(kb, board) as base, _mcp(base, token) as client:
        ids = {}
        for title, (content, tags) in CORPUS.items():
            added = _structured(
                await client.call_tool("kb_add", {"title": title, "content": content, "tags": tags})
            )
            ids[title] = added["id"]
        hits = _structured(
            await client.call_tool("kb_search", {"query": "wild yeast starter for a loaf"})
        )["hits"]
        assert hits[0]["id"] == ids["Baking sourdough bread"]
        doc = _structured(await client.call_tool("kb_get", {"id": hits[0]["id"]}))
        assert doc["title"] == "Baking sourdough bread"
        listed = _structured(await client.call_tool("kb_list", {"limit": 50}))
        assert listed["total"] == len(CORPUS)
        deleted = _structured(await client.call_tool("kb_delete", {"id": hits[0]["id"]}))
        assert deleted == {"deleted": True}
        refused = await client.call_tool("kb_search", {"query": "q", "limit": 99})
        assert refused.is_error


async def test_the_endpoint_is_stateless_so_any_task_can_answer(kb: KbStack) -> None:
    """No session id is issued; a document added through one app is found through another."""
    token = fake_auth_token()
    board = Switchboard(tokens=[SecretStr(token)])
    async with _serving(kb, board) as first, _serving(kb, board) as second:
        response = await _post_initialize(first, Authorization=f"Bearer {token}")
        assert response.status_code == 200
        assert "mcp-session-id" not in response.headers
        async with _mcp(first, token) as client:
            added = _structured(
                await client.call_tool("kb_add", {"title": "Shared", "content": "one database"})
            )
        async with _mcp(second, token) as client:
            doc = _structured(await client.call_tool("kb_get", {"id": added["id"]}))
        assert doc["content"] == "one database"


async def test_health_endpoints_need_no_token_and_readyz_follows_readiness(kb: KbStack) -> None:
    """/healthz is always 200; /readyz is 200 only when ready, and names versions, not values."""
    status = CacheEntryStatus(
        name="kb-mcp/dev/openai-api-key",
        version_id="v-123",
        age_s=12.3456,
        stale=False,
        stale_for_s=0.0,
        last_error=None,
        created_at=None,
    )
    board = Switchboard(tokens=[SecretStr(fake_auth_token())])
    board.report = ReadinessSnapshot(ready=False, database_ok=False, detail="ConnectionError")
    async with _serving(kb, board) as base, httpx2.AsyncClient() as http:
        health = await http.get(f"{base}/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        not_ready = await http.get(f"{base}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["status"] == "not_ready"
        assert not_ready.json()["database"] == "ConnectionError"
        board.report = ReadinessSnapshot(ready=True, secrets=(status,))
        ready = await http.get(f"{base}/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "secrets": [
                {
                    "name": "kb-mcp/dev/openai-api-key",
                    "version_id": "v-123",
                    "age_s": 12.346,
                    "stale": False,
                }
            ],
            "database": "ok",
        }
        board.report = ReadinessSnapshot(ready=True, degraded=True)
        degraded = await http.get(f"{base}/readyz")
        assert (degraded.status_code, degraded.json()["status"]) == (200, "degraded")
        board.readiness_fails = True
        broken = await http.get(f"{base}/readyz")
        assert (broken.status_code, broken.json()["status"]) == (503, "not_ready")
        assert ready.headers["cache-control"] == "no-store"


async def test_missing_or_wrong_tokens_get_401_and_are_logged_without_the_token(
    kb: KbStack, captured_logs: CapturedLogs
) -> None:
    """No token or a wrong one: 401 with a Bearer challenge; the log names the reason only."""
    token, wrong = fake_auth_token(), fake_auth_token()
    board = Switchboard(tokens=[SecretStr(token)])
    async with _serving(kb, board) as base:
        missing = await _post_initialize(base)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="kb-mcp"'
        assert missing.json() == {"error": "unauthorized", "detail": "missing bearer token"}
        invalid = await _post_initialize(base, Authorization=f"Bearer {wrong}")
        assert invalid.status_code == 401
        assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
        basic = await _post_initialize(base, Authorization=f"Basic {token}")
        assert basic.status_code == 401
        assert (await _post_initialize(base, Authorization=f"Bearer {token}")).status_code == 200
    rejected = captured_logs.events("http.auth_rejected")
    assert [r["reason"] for r in rejected] == ["missing", "invalid", "invalid"]
    assert all(r["client"].startswith("127.0.0.1:") for r in rejected)
    assert token not in captured_logs.text()
    assert wrong not in captured_logs.text()


async def test_current_and_previous_tokens_work_until_the_previous_is_dropped(
    kb: KbStack,
) -> None:
    """During the overlap both tokens work; after a second rotation the oldest is refused."""
    first, second, third = fake_auth_token(), fake_auth_token(), fake_auth_token()
    board = Switchboard(tokens=[SecretStr(second), SecretStr(first)])
    async with _serving(kb, board) as base:
        for token in (first, second):
            async with _mcp(base, token) as client:
                assert len((await client.list_tools()).tools) == 9
        board.tokens = [SecretStr(third), SecretStr(second)]  # the second rotation
        assert (await _post_initialize(base, Authorization=f"Bearer {first}")).status_code == 401
        for token in (second, third):
            async with _mcp(base, token) as client:
                assert len((await client.list_tools()).tools) == 9


async def test_a_foreign_origin_or_host_is_refused_even_with_a_token(
    kb: KbStack, captured_logs: CapturedLogs
) -> None:
    """DNS-rebinding protection: foreign Origin 403, foreign Host 421; local origins pass."""
    token = fake_auth_token()
    bearer = f"Bearer {token}"
    board = Switchboard(tokens=[SecretStr(token)])
    async with _serving(kb, board) as base:
        foreign = await _post_initialize(base, Authorization=bearer, Origin="http://evil.example")
        assert foreign.status_code == 403
        assert foreign.json()["detail"] == "origin not allowed"
        no_token = await _post_initialize(base, Origin="http://evil.example")
        assert no_token.status_code == 403
        host = await _post_initialize(base, Authorization=bearer, Host="evil.example")
        assert host.status_code == 421
        local = await _post_initialize(base, Authorization=bearer, Origin="http://localhost:6274")
        assert local.status_code == 200
    assert len(captured_logs.events("http.origin_rejected")) == 2
    assert len(captured_logs.events("http.host_rejected")) == 1


async def test_without_a_token_secret_the_loopback_endpoint_is_open(kb: KbStack) -> None:
    """No BearerAuth (loopback development use): tools answer without a token."""
    async with _serving(kb, Switchboard(), auth=False) as base, _mcp(base, None) as client:
        assert len((await client.list_tools()).tools) == 9
