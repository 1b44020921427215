"""/readyz tells the truth: a hung embeddings endpoint and a rejected secret version show."""

from __future__ import annotations

import asyncio

import httpx2
from secretswap.testing import ManualClock

from kb_mcp.db.vectors import init_connection
from kb_mcp.runtime.app import build_app
from kb_mcp.runtime.serve import boot_migrations
from kb_mcp.runtime.supervisor import boot_runtime
from tests.support.fakes import fake_password
from tests.support.knowledge_base import serve_asgi
from tests.support.runtime_env import RuntimeEnv

SEARCH = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "kb_search", "arguments": {"query": "what hangs"}},
}
HEADERS = {"Accept": "application/json, text/event-stream"}


async def test_a_hung_embeddings_endpoint_makes_readiness_degraded(env: RuntimeEnv) -> None:
    """A call waiting past the stall bound, nothing answered: degraded; ready once answered."""
    settings = env.settings(embeddings_stall_s=3.0)
    async with boot_runtime(
        settings,
        pool_init=init_connection,
        on_pool_ready=boot_migrations(settings.embedding_dimensions),
    ) as runtime:
        assert runtime.embeddings_health.stall_s == 3.0
        clock = ManualClock()
        runtime.embeddings_health.clock = clock
        built = build_app(runtime, host="127.0.0.1")
        async with (
            serve_asgi(built.http) as base,
            httpx2.AsyncClient(base_url=base, timeout=120) as http,
        ):
            assert (await http.get("/readyz")).json()["status"] == "ready"
            env.openai.hold_embeddings()
            try:
                search = asyncio.create_task(http.post("/mcp", json=SEARCH, headers=HEADERS))
                await env.openai.embeddings_held()
                assert (await http.get("/readyz")).json()["status"] == "ready"  # not yet 3 s
                clock.advance(3.0)
                held = await http.get("/readyz")
                assert held.status_code == 200
                body = held.json()
                assert body["status"] == "degraded"
                assert body["embeddings"].startswith("embeddings not answering")
            finally:
                env.openai.release_embeddings()
            answer = await search
            assert answer.json()["result"]["isError"] is False
            after = (await http.get("/readyz")).json()
            assert after["status"] == "ready"
            assert after["embeddings"] == "ok"


async def test_a_rejected_version_shows_in_readiness_until_a_good_one_serves(
    env: RuntimeEnv,
) -> None:
    """A refused version: degraded, named with its error's classes and no value; gone after."""
    async with boot_runtime(env.settings()) as runtime:
        built = build_app(runtime, host="127.0.0.1")
        async with serve_asgi(built.http) as base, httpx2.AsyncClient(base_url=base) as http:
            assert (await http.get("/readyz")).json()["rotation_rejected"] == []
            password = fake_password()
            bad = await env.put(env.postgres_secret, env.postgres_json("b", password=password))
            assert not await runtime.refresher.refresh_one(env.postgres_secret)
            response = await http.get("/readyz")
            assert response.status_code == 200
            body = response.json()
            assert body["status"] == "degraded"
            assert body["rotation_rejected"] == [
                {
                    "secret": env.postgres_secret,
                    "version_id": bad,
                    "error": "RotationError",
                    "cause": "DatabaseAuthError",
                }
            ]
            assert password not in response.text
            good = await env.rotate_postgres()
            assert await runtime.refresher.refresh_one(env.postgres_secret)
            body = (await http.get("/readyz")).json()
            assert body["rotation_rejected"] == []
            assert body["status"] == "ready"
            assert runtime.pool.version_id == good
