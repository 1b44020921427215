"""A database restart ridden through: reads and writes sent while PostgreSQL is gone
succeed once it is back, within their budget; a cut-off commit is resolved, not repeated.

The outage is a proxy in front of PostgreSQL (`tests.support.pg_proxy`): every connection
cut and the port refusing, until the test brings it back, after it has seen the requests
wait (the reconnect probe failing); the budget (20 s) is far above what the test needs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp import Client

from kb_mcp.db.ridethrough import Reconnect
from tests.integration.runtime.test_deadlines import served
from tests.support.mcp_calls import call_ok
from tests.support.pg_proxy import pg_proxy
from tests.support.runtime_env import RuntimeEnv, wait_until


async def test_reads_and_writes_sent_during_a_restart_succeed(env: RuntimeEnv) -> None:
    """Searches, gets, lists, a resource read and adds sent while the database is down all
    succeed when it is back; one probe at a time; nothing stored twice; /readyz says
    degraded (200), not unready, meanwhile."""
    async with (
        pg_proxy(env.app.host, env.app.port) as proxy,
        served(env, proxy, request_timeout_s=20.0) as (runtime, built),
        Client(built.mcp) as client,
    ):
        first = await call_ok(client, "kb_add", {"title": "Harbour", "content": "ships dock"})
        reconnect = built.context.reconnect
        assert isinstance(reconnect, Reconnect)
        await proxy.go_down()

        async def add(n: int) -> dict[str, Any]:
            body = {"title": f"Sent while down {n}", "content": f"written during outage {n}"}
            return await call_ok(client, "kb_add", body)

        calls = [
            call_ok(client, "kb_search", {"query": "ships"}),
            call_ok(client, "kb_get", {"id": first["id"]}),
            call_ok(client, "kb_list", {}),
            add(1),
            add(2),
            client.read_resource(f"kb://documents/{first['id']}"),
        ]
        tasks = [asyncio.ensure_future(c) for c in calls]
        await wait_until(lambda: reconnect.probes >= 2, what="a failed reconnect probe")
        health = await runtime.health(probe_timeout_s=0.5)
        assert health.ready
        assert health.degraded
        assert not health.database_ok
        await proxy.come_back()
        results: list[Any] = await asyncio.gather(*tasks)
        search, got, listed, added_1, added_2, resource = results

        assert search["hits"]
        assert got["title"] == "Harbour"
        assert listed["total"] >= 1
        assert added_1["status"] == added_2["status"] == "created"
        assert "ships dock" in str(resource)
        counts = await runtime.pool.fetch(
            "SELECT content_hash, count(*) AS n FROM documents GROUP BY content_hash"
        )
        assert len(counts) == 3
        assert all(row["n"] == 1 for row in counts)


@pytest.mark.parametrize("forward", [True, False], ids=["commit-reached", "commit-lost"])
async def test_an_add_whose_commit_was_cut_off_is_stored_exactly_once(
    env: RuntimeEnv, forward: bool
) -> None:
    """The connection cut right after the COMMIT was sent (or before it left): the add is
    resolved by its retry and answers "created"; the document exists once."""
    async with (
        pg_proxy(env.app.host, env.app.port) as proxy,
        served(env, proxy, request_timeout_s=20.0) as (runtime, built),
        Client(built.mcp) as client,
    ):
        proxy.cut_at_commit(forward=forward)
        added = await call_ok(client, "kb_add", {"title": "Once", "content": "exactly once"})
        assert proxy.commit_cut.is_set()
        assert added["status"] == "created"
        stored = await runtime.pool.fetchval("SELECT count(*) FROM documents")
        assert stored == 1
