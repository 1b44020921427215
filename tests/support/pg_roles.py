"""Superuser helpers only tests and benchmarks need: change a role's password or login,
drop it, count and cut sessions. Built on the cluster's `execute`/`fetch` (each a short
superuser connection); the product's own helpers stay in `kb_mcp.devstack.pg_admin`.

Role names are quoted with `quote_ident`, and passwords reach the server as SCRAM
verifiers (`password_literal`), so they never appear in a statement or a server log.
"""

from __future__ import annotations

from kb_mcp.db.sqltext import password_literal, quote_ident
from kb_mcp.devstack.pg_admin import PostgresAdmin

__all__ = ["connection_count", "drop_role", "set_login", "set_password", "terminate_backends"]

_TERMINATE_WAIT_MS = 5000
_SESSIONS = (
    " FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    " AND ($1::text IS NULL OR usename = $1) AND ($2::text IS NULL OR datname = $2)"
)


async def set_password(cluster: PostgresAdmin, name: str, password: str) -> None:
    """Give role `name` a new password (its open sessions stay)."""
    await cluster.execute(
        f"ALTER ROLE {quote_ident(name)} WITH PASSWORD {password_literal(password)}"
    )


async def set_login(cluster: PostgresAdmin, name: str, login: bool) -> None:
    """Allow or refuse new sessions of role `name` (LOGIN / NOLOGIN)."""
    await cluster.execute(f"ALTER ROLE {quote_ident(name)} WITH {'LOGIN' if login else 'NOLOGIN'}")


async def drop_role(cluster: PostgresAdmin, name: str) -> None:
    """Cut the role's sessions, then drop it if it exists (it must own nothing)."""
    await terminate_backends(cluster, user=name)
    await cluster.execute(f"DROP ROLE IF EXISTS {quote_ident(name)}")


async def terminate_backends(
    cluster: PostgresAdmin, *, user: str | None = None, database: str | None = None
) -> int:
    """Terminate client sessions (optionally of one user and/or database); return how many."""
    rows = await cluster.fetch(
        f"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $3)){_SESSIONS}",
        user,
        database,
        _TERMINATE_WAIT_MS,
    )
    return int(rows[0][0] or 0)


async def connection_count(
    cluster: PostgresAdmin, *, user: str | None = None, database: str | None = None
) -> int:
    """Count client sessions (optionally of one user and/or database), not the caller's."""
    rows = await cluster.fetch(f"SELECT count(*){_SESSIONS}", user, database)
    return int(rows[0][0] or 0)
