"""A deadline per request: past it the caller is told what is known, and PostgreSQL stops.

Each fault is made for real and waited for by the request's own budget (1 s here), never
by a sleep: a table lock held by the test (the statement waits in the server), a deferred
trigger that waits at COMMIT on an advisory lock the test holds, a proxy that stalls every
byte (a paused database as the client sees it).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from mcp import Client

from kb_mcp.db.vectors import init_connection
from kb_mcp.runtime.app import BuiltApp, build_app
from kb_mcp.runtime.serve import boot_migrations
from kb_mcp.runtime.supervisor import Runtime, boot_runtime
from tests.support.mcp_calls import call_ok, call_refused
from tests.support.pg_proxy import PgProxy, pg_proxy
from tests.support.runtime_env import RuntimeEnv

_BLOCKED = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = $1 AND state = 'active' AND wait_event_type = 'Lock'"
)
# Runs at COMMIT of an insert into documents and waits there for the test's advisory lock.
_WAIT_AT_COMMIT = """
CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON documents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit();
"""


@asynccontextmanager
async def served(
    env: RuntimeEnv, proxy: PgProxy | None = None, **overrides: Any
) -> AsyncIterator[tuple[Runtime, BuiltApp]]:
    """A booted runtime (through `proxy` when given) and its MCP server."""
    if proxy is not None:
        await env.put(env.postgres_secret, env.postgres_json("a", port=proxy.port))
    settings = env.settings(**{"request_timeout_s": 1.0, **overrides})
    async with boot_runtime(
        settings,
        pool_init=init_connection,
        on_pool_ready=boot_migrations(settings.embedding_dimensions),
    ) as runtime:
        yield runtime, build_app(runtime, host="127.0.0.1")


@asynccontextmanager
async def holding(env: RuntimeEnv, *statements: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection of role b, acting as the owning group, in a transaction running
    `statements` (a lock it holds until the block ends)."""
    user, password = env.app.credentials("b")
    conn = await asyncpg.connect(
        host=env.app.host,
        port=env.app.port,
        user=user,
        password=password,
        database=env.app.database,
    )
    try:
        await conn.execute(f'SET ROLE "{env.app.group}"')
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
            yield conn
    finally:
        await conn.close()


async def _settled(conn: asyncpg.Connection[Any], database: str) -> int:
    """Statements of `database` still waiting on a lock, once none is (bounded: 10 s)."""
    for _ in range(1000):
        count = int(await conn.fetchval(_BLOCKED, database))
        if count == 0:
            return 0
        await asyncio.sleep(0.01)  # PostgreSQL signals nobody when a backend stops: poll
    return count


async def test_a_read_past_its_deadline_is_cancelled_in_the_server(env: RuntimeEnv) -> None:
    """kb_get blocked on a lock: the caller is told the budget ran out; no statement stays."""
    async with served(env) as (_runtime, built), Client(built.mcp) as client:
        added = await call_ok(client, "kb_add", {"title": "Locked", "content": "a locked row"})
        async with holding(env, "LOCK TABLE documents IN ACCESS EXCLUSIVE MODE") as locker:
            text = await call_refused(client, "kb_get", {"id": added["id"]})
            assert "no answer within the request's budget of 1 s" in text, text
            assert "can be repeated" in text
            assert await _settled(locker, env.app.database) == 0
        got = await call_ok(client, "kb_get", {"id": added["id"]})
        assert got["title"] == "Locked"


async def test_an_add_past_its_deadline_before_commit_stored_nothing(env: RuntimeEnv) -> None:
    """kb_add blocked before its COMMIT: "nothing was stored", and nothing is."""
    async with served(env) as (runtime, built), Client(built.mcp) as client:
        async with holding(env, "LOCK TABLE documents IN ACCESS EXCLUSIVE MODE") as locker:
            text = await call_refused(client, "kb_add", {"title": "Late", "content": "too late"})
            assert "no answer within the request's budget" in text, text
            assert "nothing was stored" in text
            assert await _settled(locker, env.app.database) == 0
        assert await runtime.pool.fetchval("SELECT count(*) FROM documents") == 0


async def test_an_add_past_its_deadline_during_commit_is_outcome_unknown(env: RuntimeEnv) -> None:
    """Cut off in COMMIT: "outcome unknown" (never "nothing stored"); the same call again
    stores the document exactly once."""
    async with served(env) as (runtime, built), Client(built.mcp) as client:
        async with runtime.pool.acquire() as conn:
            await conn.execute(f'SET ROLE "{env.app.group}"')
            await conn.execute(_WAIT_AT_COMMIT)
            await conn.execute("RESET ROLE")
        arguments = {"title": "Committing", "content": "held at commit", "external_id": "k1"}
        async with holding(env, "SELECT pg_advisory_lock(4242)"):
            text = await call_refused(client, "kb_add", arguments)
        assert "while committing: the outcome is unknown" in text, text
        assert "same external_id" in text
        again = await call_ok(client, "kb_add", arguments)
        assert again["status"] in ("created", "unchanged")
        rows = await runtime.pool.fetchval(
            "SELECT count(*) FROM documents WHERE external_id = 'k1'"
        )
        assert rows == 1


async def test_a_stalled_database_answers_within_the_budget(env: RuntimeEnv) -> None:
    """Every byte to PostgreSQL stalled (a paused server): the request ends with the budget
    error instead of hanging, and the next one after the stall works."""
    async with (
        pg_proxy(env.app.host, env.app.port) as proxy,
        served(env, proxy) as (_runtime, built),
        Client(built.mcp) as client,
    ):
        await call_ok(client, "kb_add", {"title": "Before", "content": "stored before"})
        proxy.stall()
        text = await call_refused(client, "kb_search", {"query": "stored"})
        assert "no answer within the request's budget of 1 s" in text, text
        proxy.unstall()
        found = await call_ok(client, "kb_search", {"query": "stored before"})
        assert found["hits"]


async def test_pool_connections_have_keepalives_and_a_user_timeout(env: RuntimeEnv) -> None:
    """Every pool connection's socket: SO_KEEPALIVE on, TCP_USER_TIMEOUT from the setting."""
    async with (
        served(env, db_tcp_user_timeout_s=7.0) as (runtime, _built),
        runtime.pool.acquire() as conn,
    ):
        raw = conn._con  # type: ignore[attr-defined]  # the connection behind the pool's proxy
        sock = raw._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 7000
        timeout = await conn.fetchval("SHOW statement_timeout")
        assert timeout == "6s"  # the request budget (1 s) plus the margin (5 s)
