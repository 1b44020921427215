"""/readyz reports the embeddings endpoint: degraded with a reason, never a call per probe."""

from __future__ import annotations

import httpx2

from kb_mcp.db.vectors import init_connection
from kb_mcp.runtime.app import build_app
from kb_mcp.runtime.serve import boot_migrations
from kb_mcp.runtime.supervisor import boot_runtime
from tests.support.knowledge_base import serve_asgi
from tests.support.runtime_env import RuntimeEnv


async def test_readiness_turns_degraded_when_embeddings_fail_and_probes_rarely(
    env: RuntimeEnv,
) -> None:
    """A failing kb_search makes /readyz degraded (200, reason); 20 probes cost no API call."""
    settings = env.settings()

    async with boot_runtime(
        settings,
        pool_init=init_connection,
        on_pool_ready=boot_migrations(settings.embedding_dimensions),
    ) as runtime:
        built = build_app(runtime, host="127.0.0.1")
        async with serve_asgi(built.http) as base, httpx2.AsyncClient(base_url=base) as http:
            first = (await http.get("/readyz")).json()
            assert first["status"] == "ready"
            assert first["embeddings"] == "ok"
            env.openai.fail_next(1000, 500)
            call = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "kb_search", "arguments": {"query": "anything"}},
            }
            answer = await http.post(
                "/mcp", json=call, headers={"Accept": "application/json, text/event-stream"}
            )
            assert answer.json()["result"]["isError"] is True
            requests_before = env.openai.requests_total
            reports = [await http.get("/readyz") for _ in range(20)]
            assert {r.status_code for r in reports} == {200}
            body = reports[-1].json()
            assert body["status"] == "degraded"
            assert body["embeddings"].startswith("embeddings failing")
            assert env.openai.requests_total == requests_before
            assert runtime.embeddings_health.probes <= 1
