"""PostgreSQL rotation with AWS's alternating-users strategy.

The secret holds one of two login roles, `<base>` and `<base>_clone` (AWS's naming).
Each rotation puts the *other* role, with a fresh password, as `AWSPENDING`; `set`
creates that role (or re-passwords it) using a master secret with CREATEROLE, giving it
the memberships and role settings of the current user so both reach the same tables;
`test` logs in with it. Sessions of the role in use are never disturbed: applications
holding the old credentials keep working through the 24-hour overlap, until the next
rotation re-passwords that role.

Passwords reach the server only as SCRAM verifiers, so they never appear in a statement,
a server log or ours.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from secretswap.port import AWSCURRENT
from secretswap.schemas import parse_secret

from kb_mcp.config import Settings
from kb_mcp.db.sqltext import quote_ident, quote_literal, scram_verifier
from kb_mcp.errors import RotationError, SecretFormatError
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.aws import aws_client
from kb_mcp.ops.rotation.steps import (
    RotationResult,
    StopAfter,
    read_version,
    run_rollback,
    run_rotation,
)
from kb_mcp.secrets.schemas import PostgresCredentials

__all__ = [
    "CLONE_SUFFIX",
    "PostgresMultiUserStrategy",
    "default_master_secret_name",
    "other_username",
    "postgres_strategy",
    "rollback_postgres",
    "rotate_postgres",
]

log = structlog.get_logger(__name__)

CLONE_SUFFIX = "_clone"
MAX_IDENTIFIER_LENGTH = 63
_GUC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def default_master_secret_name(settings: Settings) -> str:
    """`kb-mcp/{env}/postgres-master`: credentials allowed to CREATE/ALTER ROLE."""
    return f"kb-mcp/{settings.env.short}/postgres-master"


def other_username(username: str) -> str:
    """The role the next rotation uses: `<base>` <-> `<base>_clone`."""
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    other = username + CLONE_SUFFIX
    if len(other.encode("utf-8")) > MAX_IDENTIFIER_LENGTH:
        raise ValueError(
            f"role name {username} is too long to add {CLONE_SUFFIX} "
            f"(postgres allows {MAX_IDENTIFIER_LENGTH} bytes)"
        )
    return other


def _failure(
    exc: BaseException, what: str, *, secret_name: str, version_id: str, hint: str
) -> RotationError:
    code = getattr(exc, "sqlstate", None)
    reason = type(exc).__name__ + (f" {code}" if code else "")
    # asyncpg messages name roles and databases, never a password (we never send one).
    message = getattr(exc, "message", None) or str(exc)
    return RotationError(
        f"{what} ({reason}: {message.lower()})",
        secret_name=secret_name,
        version_id=version_id,
        hint=hint,
    )


class PostgresMultiUserStrategy:
    """Create/alter the other login role with master credentials; log in with it."""

    kind = "postgres"

    def __init__(
        self,
        *,
        secret_name: str,
        master: PostgresCredentials | None,
        master_secret_name: str,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.secret_name = secret_name
        self.master = master
        self.master_secret_name = master_secret_name
        self.connect_timeout_s = connect_timeout_s

    def _parse(self, value: str) -> PostgresCredentials:
        return parse_secret(PostgresCredentials, value, secret_name=self.secret_name)

    def _other(self, username: str) -> str:
        try:
            return other_username(username)
        except ValueError as exc:
            raise RotationError(
                f"cannot rotate secret {self.secret_name}: {exc}",
                secret_name=self.secret_name,
                version_id="",
                hint=f"use a shorter role name (at most {MAX_IDENTIFIER_LENGTH - 6} bytes)",
            ) from exc

    def reuse_pending(self, pending: str, current: str) -> bool:
        try:
            new, old = self._parse(pending), self._parse(current)
            other = self._other(old.username)
        except (SecretFormatError, RotationError):
            return False
        return new.username == other and (new.host, new.port, new.database) == (
            old.host,
            old.port,
            old.database,
        )

    async def new_value(self, current: str) -> str:
        self._parse(current)  # a malformed current value stops the rotation here
        data = json.loads(current)
        data["username"] = self._other(str(data["username"]))
        data["password"] = secrets.token_urlsafe(32)
        secret_registry().register(data["password"])
        return json.dumps(data)

    def describe(self, value: str) -> str:
        try:
            return f"user {self._parse(value).username}"
        except SecretFormatError:
            return "a malformed value"

    def _require_master(self) -> PostgresCredentials:
        if self.master is None:
            raise RotationError(
                f"no master credentials loaded to change roles for secret {self.secret_name}",
                secret_name=self.secret_name,
                version_id="",
                hint=f"create the master secret {self.master_secret_name}",
            )
        return self.master

    @asynccontextmanager
    async def _master_connection(self) -> AsyncIterator[asyncpg.Connection]:
        master = self._require_master()
        try:
            conn = await asyncpg.connect(**master.connect_kwargs(), timeout=self.connect_timeout_s)
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            raise _failure(
                exc,
                f"could not connect with the master secret {self.master_secret_name} "
                f"as {master.identity()}",
                secret_name=self.secret_name,
                version_id="",
                hint=f"check the master secret {self.master_secret_name} (host, port, user, "
                "password) and that the database is reachable",
            ) from exc
        try:
            yield conn
        finally:
            await conn.close()

    async def plan(self, current: str, pending: str | None) -> list[str]:
        old = self._parse(current)
        user = self._other(old.username)
        async with self._master_connection() as conn:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user)
            groups = await self._groups(conn, old.username)
        action = f"alter role {user} with a new password" if exists else f"create role {user}"
        memberships = ", ".join(groups) or "no roles"
        return [
            f"would {action} (member of {memberships}) as {self._require_master().username}",
            f"would log in as {user} to {old.host}:{old.port}/{old.database} and run select 1",
        ]

    @staticmethod
    async def _groups(conn: asyncpg.Connection, username: str) -> list[str]:
        rows = await conn.fetch(
            "SELECT g.rolname FROM pg_auth_members m"
            " JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
            " WHERE u.rolname = $1 ORDER BY 1",
            username,
        )
        return sorted({str(row[0]) for row in rows})

    async def set_secret(self, pending: str, current: str) -> str:
        new, old = self._parse(pending), self._parse(current)
        role = quote_ident(new.username)
        verifier = quote_literal(scram_verifier(new.password.get_secret_value()))
        try:
            async with self._master_connection() as conn, conn.transaction():
                exists = await conn.fetchval(
                    "SELECT 1 FROM pg_roles WHERE rolname = $1", new.username
                )
                verb = "ALTER" if exists else "CREATE"
                await conn.execute(f"{verb} ROLE {role} WITH LOGIN PASSWORD {verifier}")
                groups = await self._groups(conn, old.username)
                have = set(await self._groups(conn, new.username))
                for group in groups:
                    if group not in have and group != new.username:
                        await conn.execute(f"GRANT {quote_ident(group)} TO {role}")
                copied = await self._copy_settings(conn, old.username, role)
        except RotationError:
            raise
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            raise _failure(
                exc,
                f"could not set the pending credentials of secret {self.secret_name} "
                f"(role {new.username})",
                secret_name=self.secret_name,
                version_id="",
                hint=f"the master secret {self.master_secret_name} needs a superuser or a "
                "role with CREATEROLE (and ADMIN on the groups the application user belongs to)",
            ) from exc
        action = "altered" if exists else "created"
        log.info(
            "rotation.role_saved",
            secret=self.secret_name,
            role=new.username,
            action=action,
            memberships=groups,
            settings_copied=copied,
        )
        return f"{action} role {new.username} (member of {', '.join(groups) or 'no roles'})"

    @staticmethod
    async def _copy_settings(conn: asyncpg.Connection, source: str, role: str) -> list[str]:
        """Copy per-role settings (such as `role = <group>`) from the current user."""
        rows = await conn.fetch(
            "SELECT unnest(s.setconfig) FROM pg_db_role_setting s"
            " JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0",
            source,
        )
        copied = []
        for (entry,) in rows:
            name, _, value = str(entry).partition("=")
            if not _GUC_NAME.fullmatch(name) or "," in value:
                log.warning("rotation.role_setting_skipped", setting=name)
                continue
            await conn.execute(f"ALTER ROLE {role} SET {name} = {quote_literal(value)}")
            copied.append(name)
        return copied

    async def test_secret(self, pending: str) -> str:
        new = self._parse(pending)
        try:
            conn = await asyncpg.connect(**new.connect_kwargs(), timeout=self.connect_timeout_s)
            try:
                await conn.fetchval("SELECT 1")
                version = await conn.fetchval("SHOW server_version")
            finally:
                await conn.close()
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            raise _failure(
                exc,
                f"the tested credentials of secret {self.secret_name} did not log in "
                f"as {new.identity()}",
                secret_name=self.secret_name,
                version_id="",
                hint="check the role (LOGIN, connection limit, pg_hba.conf) and rerun: the "
                "rotation resumes with the same pending version",
            ) from exc
        return f"logged in as {new.identity()} (server {version}) and ran select 1"


async def postgres_strategy(
    client: Any, settings: Settings, secret_name: str, master_secret: str | None = None
) -> PostgresMultiUserStrategy:
    """The alternating-users strategy for `secret_name`, with the master credentials read
    (and registered with the redactor) from `master_secret` or kb-mcp/{env}/postgres-master."""
    master_name = master_secret or default_master_secret_name(settings)
    _, raw_master = await read_version(client, settings, master_name, AWSCURRENT)
    master = parse_secret(
        PostgresCredentials, raw_master, secret_name=master_name, region=settings.aws_region
    )
    secret_registry().register(*master.sensitive_values())
    return PostgresMultiUserStrategy(
        secret_name=secret_name,
        master=master,
        master_secret_name=master_name,
        connect_timeout_s=settings.db_connect_timeout_s,
    )


async def rotate_postgres(
    settings: Settings,
    *,
    secret_name: str | None = None,
    master_secret: str | None = None,
    dry_run: bool = False,
    stop_after: StopAfter | None = None,
) -> RotationResult:
    """Rotate the PostgreSQL credentials secret (multi-user); resume an interrupted run."""
    name = secret_name or settings.postgres_secret_name
    async with aws_client(settings, "secretsmanager") as client:
        strategy = await postgres_strategy(client, settings, name, master_secret)
        return await run_rotation(
            client, settings, name, strategy, dry_run=dry_run, stop_after=stop_after
        )


async def rollback_postgres(
    settings: Settings, *, secret_name: str | None = None, dry_run: bool = False
) -> RotationResult:
    """Move AWSCURRENT back to AWSPREVIOUS once its credentials still log in."""
    name = secret_name or settings.postgres_secret_name
    strategy = PostgresMultiUserStrategy(
        secret_name=name,
        master=None,
        master_secret_name=default_master_secret_name(settings),
        connect_timeout_s=settings.db_connect_timeout_s,
    )
    async with aws_client(settings, "secretsmanager") as client:
        return await run_rollback(client, settings, name, strategy, dry_run=dry_run)
