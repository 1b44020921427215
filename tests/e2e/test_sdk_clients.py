"""Both official MCP SDKs on an oversized request: an error for that call, then the next call.

The Python client (`mcp`, on httpx2) lost its whole session when the server answered 413
and closed while the upload was still being sent (issue 24); the TypeScript client
(`@modelcontextprotocol/sdk`, Node's fetch) is driven by `tests/e2e/ts/oversized.mjs` and
skipped when Node or the SDK is missing (`npm ci --prefix tests/e2e/ts` installs it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from uvicorn.protocols.http.h11_impl import H11Protocol

from kb_mcp.server.auth import OriginPolicy
from kb_mcp.server.http import build_http_app
from kb_mcp.server.limits import HttpLimits
from kb_mcp.server.tools import build_mcp_server
from tests.support.knowledge_base import KbStack, serve_asgi
from tests.support.mcp_calls import call_ok
from tests.support.readiness import ReadinessSnapshot

TS_DIR = Path(__file__).parent / "ts"
OVERSIZED = 5 * 1024 * 1024
"""Content of a kb_add that no limit admits: over `HttpLimits.max_body_bytes` (4 MiB)."""


async def _ready() -> ReadinessSnapshot:
    return ReadinessSnapshot(ready=True)


@asynccontextmanager
async def _serving(kb: KbStack) -> AsyncIterator[str]:
    """The HTTP app with the production limits on 127.0.0.1; yields the `/mcp` URL."""
    limits = HttpLimits()
    app = build_http_app(
        build_mcp_server(kb.context),
        readiness=_ready,
        auth=None,
        policy=OriginPolicy.for_bind("127.0.0.1"),
        limits=limits,
    )
    async with serve_asgi(app, **limits.uvicorn_options(H11Protocol)) as base:
        yield f"{base}/mcp"


async def test_python_client_gets_an_error_for_an_oversized_add_and_goes_on(kb: KbStack) -> None:
    """5 MB kb_add: MCPError naming the size limit; the same session then lists documents."""
    async with (
        _serving(kb) as url,
        create_mcp_http_client() as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        with pytest.raises(MCPError) as refused:
            await client.call_tool("kb_add", {"title": "big", "content": "x" * OVERSIZED})
        assert "too large" in str(refused.value)
        listed = await call_ok(client, "kb_list", {})
        assert listed["documents"] == []
        await call_ok(client, "kb_add", {"title": "small", "content": "fits"})
    assert await kb.count("documents") == 1


def _ts_sdk_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (TS_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        return "the TypeScript SDK is not installed (npm ci --prefix tests/e2e/ts)"
    return None


@pytest.mark.skipif(_ts_sdk_missing() is not None, reason=_ts_sdk_missing() or "")
async def test_typescript_client_gets_an_error_for_an_oversized_add_and_goes_on(
    kb: KbStack,
) -> None:
    """5 MB kb_add through the TypeScript SDK: an error naming the limit; its next call works."""
    async with _serving(kb) as url:
        node = await asyncio.create_subprocess_exec(
            "node",
            str(TS_DIR / "oversized.mjs"),
            url,
            str(OVERSIZED),
            cwd=TS_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(node.communicate(), 120)
    assert node.returncode == 0, err.decode(errors="replace")
    calls = {line["call"]: line for line in map(json.loads, out.decode().splitlines())}
    assert not calls["oversized"]["ok"]
    assert "too large" in calls["oversized"]["error"], calls
    assert calls["next"] == {"call": "next", "ok": True, "error": None, "isError": False}
    assert await kb.count("documents") == 0
