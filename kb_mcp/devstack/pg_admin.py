"""Superuser SQL helpers of the local cluster: roles, databases, grants.

Mixed into `PostgresCluster`; each helper opens a short superuser connection. What only
tests and benchmarks do (change a password or login, drop a role, count or cut sessions)
lives with them (`tests/support/pg_roles.py`), over `execute` and `fetch`. Role
names are quoted with `quote_ident`, and passwords reach the server as SCRAM verifiers
(`password_literal`), so they never appear in a statement or a server log.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog

from kb_mcp.db.sqltext import password_literal, quote_ident, quote_literal
from kb_mcp.devstack.pg_binaries import PostgresClusterError

__all__ = ["PostgresAdmin"]

logger = structlog.get_logger(__name__)

_CONNECT_TIMEOUT_S = 10.0


class PostgresAdmin:
    """What a superuser does to a running server; the cluster supplies where and who."""

    host: str
    superuser: str

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def superuser_password(self) -> str:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def _connection(self, database: str = "postgres") -> AsyncIterator[asyncpg.Connection]:
        conn = await asyncpg.connect(
            host=self.host,
            port=self.port,
            user=self.superuser,
            password=self.superuser_password,
            database=database,
            timeout=_CONNECT_TIMEOUT_S,
        )
        try:
            yield conn
        finally:
            await conn.close()

    async def execute(self, sql: str, *args: object, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser and return its status tag."""
        async with self._connection(database) as conn:
            return await conn.execute(sql, *args)

    async def fetch(
        self, sql: str, *args: object, database: str = "postgres"
    ) -> list[asyncpg.Record]:
        """Run ``sql`` as the superuser and return its rows."""
        async with self._connection(database) as conn:
            return await conn.fetch(sql, *args)

    async def create_group(self, name: str) -> None:
        """Create the NOLOGIN role ``name`` unless it exists."""
        async with self._connection() as conn:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
                await conn.execute(f"CREATE ROLE {quote_ident(name)} NOLOGIN")

    async def create_role(
        self, name: str, password: str, *, login: bool = True, member_of: str | None = None
    ) -> None:
        """Create the role, or alter it to have this password and login flag.

        With ``member_of``, the role joins that group and its sessions act as it.
        """
        role = quote_ident(name)
        login_kw = "LOGIN" if login else "NOLOGIN"
        async with self._connection() as conn:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(
                f"{verb} ROLE {role} WITH {login_kw} PASSWORD {password_literal(password)}"
            )
            if member_of is not None:
                await conn.execute(f"GRANT {quote_ident(member_of)} TO {role}")
                await conn.execute(f"ALTER ROLE {role} SET role = {quote_literal(member_of)}")
        logger.info("postgres.role_saved", role=name, created=not exists, login=login)

    async def create_database(self, name: str, owner: str) -> None:
        """Create the database unless it exists, and the ``vector`` extension in it."""
        async with self._connection() as conn:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(
                    f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)}"
                )
        async with self._connection(name) as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    async def grant_all(self, database: str, role: str) -> None:
        """Give ``role`` everything on ``database``'s public schema, now and for new objects.

        Default privileges cover objects later created by the superuser and by
        the database owner.
        """
        grantee = quote_ident(role)
        async with self._connection() as conn:
            owner = await conn.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database
            )
            if owner is None:
                raise PostgresClusterError(f"database {database} does not exist")
            await conn.execute(
                f"GRANT CONNECT, TEMPORARY ON DATABASE {quote_ident(database)} TO {grantee}"
            )
        creators = sorted({self.superuser, str(owner)} - {role})
        async with self._connection(database) as conn:
            await conn.execute(f"GRANT ALL ON SCHEMA public TO {grantee}")
            for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
                await conn.execute(f"GRANT ALL ON ALL {kind} IN SCHEMA public TO {grantee}")
                for creator in creators:
                    await conn.execute(
                        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(creator)} "
                        f"IN SCHEMA public GRANT ALL ON {kind} TO {grantee}"
                    )
