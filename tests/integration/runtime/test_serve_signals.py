"""`kb-mcp serve --transport http` as a real process: SIGTERM drains, SIGHUP refreshes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2

from kb_mcp.ops.drill.load import mcp_client
from tests.support.processes import KbMcpProcess
from tests.support.runtime_env import RuntimeEnv, wait_until


@contextmanager
def _server(env: RuntimeEnv, **extra: str) -> Iterator[tuple[KbMcpProcess, str]]:
    process = KbMcpProcess(
        ("serve", "--transport", "http", "--port", "0"), env.process_env(**extra), handshake=True
    ).start()
    try:
        listening = process.wait_ready(timeout_s=60)
        yield process, f"http://127.0.0.1:{listening['port']}"
    finally:
        process.kill()


async def test_sigterm_lets_in_flight_requests_finish_and_exits_0(env: RuntimeEnv) -> None:
    """Requests in flight when SIGTERM arrives complete successfully; the exit code is 0."""
    # Every search its own embeddings call, so the endpoint's count says all are in flight.
    with _server(env, KB_MCP_EMBEDDING_MAX_CALLS="0") as (process, base):
        async with mcp_client(f"{base}/mcp", None) as client:
            added = await client.call_tool(
                "kb_add", {"title": "drain", "content": "requests finish during shutdown"}
            )
            assert not added.is_error, process.text()[-3000:]
        env.openai.latency_s = 1.0  # every embedding call now takes a second

        errors: list[str] = []

        async def one_search(i: int) -> bool:
            ok = False
            try:
                async with mcp_client(f"{base}/mcp", None) as client:
                    # The client validates results against the tool's schema, which it fetches
                    # once: fetch it now, so the call in flight is the only request left.
                    await client.list_tools()
                    result = await client.call_tool("kb_search", {"query": f"shutdown {i}"})
                    ok = not result.is_error
            except Exception as exc:  # closing the client after the server stopped may fail
                errors.append(repr(exc))
            return ok

        searches = [asyncio.create_task(one_search(i)) for i in range(8)]
        # 1 add + 8 searches reached the endpoint: every search is in flight.
        await wait_until(lambda: env.openai.requests_total >= 9, what="searches in flight")
        process.signal(signal.SIGTERM)
        results = await asyncio.gather(*searches)
        code = await asyncio.to_thread(process.wait, 30)
    assert results == [True] * 8, errors
    assert code == 0
    assert process.events("server.stopped")
    assert sum((await env.connections()).values()) == 0


async def test_sighup_refreshes_secrets_at_once(env: RuntimeEnv) -> None:
    """With a one-hour TTL, SIGHUP makes the server pick up a rotated secret immediately."""
    with _server(env, SECRETS_CACHE_TTL_SECONDS="3600") as (process, base):
        version = await env.rotate_postgres()
        process.signal(signal.SIGHUP)
        async with httpx2.AsyncClient() as http:
            for _ in range(500):
                body = (await http.get(f"{base}/readyz")).json()
                in_service = {s["name"]: s["in_service_version_id"] for s in body["secrets"]}
                if in_service.get(env.postgres_secret) == version:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"rotation not picked up after SIGHUP: {body}")
        assert process.events("secret.rotation_detected")
        process.signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
