"""The real `kb-mcp serve` process over both transports, with token rotation and racing boots."""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx2
from mcp import Client, StdioServerParameters

from kb_mcp.ops.drill.load import mcp_client
from tests.support.fakes import fake_auth_token
from tests.support.mcp_calls import call_ok
from tests.support.processes import KbMcpProcess
from tests.support.runtime_env import RuntimeEnv

TOKEN_SECRET = "kb-mcp/prod/mcp-auth-token"


async def test_stdio_transport_serves_every_tool(env: RuntimeEnv) -> None:
    """Over stdio (a subprocess, as desktop clients run it): add, search, get, list, delete."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "kb_mcp", "serve", "--transport", "stdio"],
        env=env.process_env(),
    )
    async with Client(params) as client:
        first = await call_ok(
            client,
            "kb_add",
            {
                "title": "Rotating database credentials",
                "content": "Alternate between two login roles so the old password keeps working.",
                "tags": ["ops"],
            },
        )
        await call_ok(
            client,
            "kb_add",
            {"title": "Baking bread", "content": "Flour, water, salt and a long slow rise."},
        )
        hits = (await call_ok(client, "kb_search", {"query": "login roles password rotation"}))[
            "hits"
        ]
        assert hits[0]["id"] == first["id"]
        document = await call_ok(client, "kb_get", {"id": first["id"]})
        assert document["title"] == "Rotating database credentials"
        listed = await call_ok(client, "kb_list", {"tags": ["ops"]})
        assert [d["id"] for d in listed["documents"]] == [first["id"]]
        assert (await call_ok(client, "kb_delete", {"id": first["id"]}))["deleted"] is True
        refused = await client.call_tool("kb_search", {"query": "x", "limit": 500})
        assert refused.is_error


async def test_bearer_token_rotation_over_http(env: RuntimeEnv) -> None:
    """Current token works; after a rotation the previous one still works; after a second
    rotation the oldest is refused. Missing and wrong tokens get 401."""
    tokens = [fake_auth_token() for _ in range(3)]
    await env.client.create_secret(Name=TOKEN_SECRET, SecretString=tokens[0])
    process = KbMcpProcess(
        ("serve", "--transport", "http", "--port", "0"),
        env.process_env(KB_MCP_AUTH_TOKEN_SECRET=TOKEN_SECRET, SECRETS_CACHE_TTL_SECONDS="3600"),
        handshake=True,
    ).start()
    try:
        port = process.wait_ready(timeout_s=60)["port"]
        url = f"http://127.0.0.1:{port}/mcp"

        async def status(token: str | None) -> int:
            headers = {"Accept": "application/json, text/event-stream"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            async with httpx2.AsyncClient() as http:
                return (await http.post(url, json=body, headers=headers)).status_code

        async def works(token: str) -> bool:
            async with mcp_client(url, token) as client:
                result = await client.call_tool("kb_list", {})
                return not result.is_error

        assert await status(None) == 401
        assert await status("not-the-token-" + "x" * 12) == 401
        assert await works(tokens[0])

        async def rotate_to(token: str) -> None:
            version = await env.put(TOKEN_SECRET, token)
            process.signal(signal.SIGHUP)
            async with httpx2.AsyncClient() as http:
                for _ in range(500):
                    body = (await http.get(f"http://127.0.0.1:{port}/readyz")).json()
                    current = {s["name"]: s["in_service_version_id"] for s in body["secrets"]}
                    if current.get(TOKEN_SECRET) == version:
                        return
                    await asyncio.sleep(0.02)
            raise AssertionError("token rotation not picked up")

        await rotate_to(tokens[1])
        assert await works(tokens[1])
        assert await works(tokens[0])  # previous, within the overlap
        await rotate_to(tokens[2])
        assert await works(tokens[2])
        assert await works(tokens[1])
        assert await status(tokens[0]) == 401  # two rotations ago
        assert process.events("http.auth_rejected")
        process.signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
        assert not [t for t in tokens if t in process.text()]
    finally:
        process.kill()


async def test_two_servers_booting_together_on_an_empty_database_both_come_up(
    env: RuntimeEnv,
) -> None:
    """Migrations run under an advisory lock: two processes racing on one database both serve."""
    processes = [
        KbMcpProcess(
            ("serve", "--transport", "http", "--port", "0"), env.process_env(), handshake=True
        ).start()
        for _ in range(2)
    ]
    try:
        ports = await asyncio.gather(*(asyncio.to_thread(p.wait_ready, 90.0) for p in processes))
        async with httpx2.AsyncClient() as http:
            for listening in ports:
                ready = await http.get(f"http://127.0.0.1:{listening['port']}/readyz")
                assert ready.status_code == 200
        applied = sum(len(p.events("db.migration_applied")) for p in processes)
        assert applied >= 1
        rows = await env.pg.fetch(
            "SELECT count(*) AS n FROM schema_migrations", database=env.app.database
        )
        assert rows[0]["n"] == applied
        for process in processes:
            process.signal(signal.SIGTERM)
        codes = await asyncio.gather(*(asyncio.to_thread(p.wait, 30) for p in processes))
        assert codes == [0, 0]
    finally:
        for process in processes:
            process.kill()
