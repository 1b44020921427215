"""Make the database follow the secret: the application role's password is the secret's.

Where the source of truth lives in a development stack: the credentials secret. docker
compose's emulator keeps secrets in memory, so after `down`/`up` (or `restart
secretsmanager`) the seed re-creates them from the `.env` values while the database
volume may hold a password a rotation set since. A PostgreSQL password cannot be read
back, so the secret cannot learn it; instead `kb-mcp secrets seed --reconcile-database`
connects with the master secret and sets the role named by the credentials secret's
AWSCURRENT version to that version's password (a SCRAM verifier, never the password in
SQL), creating it in the groups of `--app-group` when it does not exist yet. Then it logs
in as that role to prove it. Idempotent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import structlog
from secretswap.port import AWSCURRENT
from secretswap.schemas import parse_secret

from kb_mcp.config import Settings
from kb_mcp.db.sqltext import password_literal, quote_ident
from kb_mcp.errors import ConfigError
from kb_mcp.ops.aws import aws_client
from kb_mcp.ops.rotation.postgres import default_master_secret_name
from kb_mcp.ops.rotation.steps import read_version
from kb_mcp.secrets.schemas import PostgresCredentials

__all__ = ["ReconcileOutcome", "reconcile_database_role"]

log = structlog.get_logger(__name__)

_CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ReconcileOutcome:
    """The role set to the secret's password ("altered" or "created"), and by which version."""

    role: str
    action: str
    version_id: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _read(settings: Settings, name: str) -> tuple[str, PostgresCredentials]:
    async with aws_client(settings, "secretsmanager") as client:
        version_id, raw = await read_version(client, settings, name, AWSCURRENT)
    return version_id, parse_secret(
        PostgresCredentials, raw, secret_name=name, region=settings.aws_region
    )


async def reconcile_database_role(
    settings: Settings, *, groups: tuple[str, ...] = ()
) -> ReconcileOutcome:
    """Set the credentials secret's role to its password, as the master secret's user."""
    app_name = settings.postgres_secret_name
    master_name = default_master_secret_name(settings)
    version_id, app = await _read(settings, app_name)
    _, master = await _read(settings, master_name)
    if app.username == master.username:
        raise ConfigError(
            f"secret {app_name} names the master user {master.username}",
            variable="DB_USER",
            hint="the application must log in as its own role, not the superuser",
        )
    role = quote_ident(app.username)
    verifier = password_literal(app.password.get_secret_value())
    conn = await asyncpg.connect(**master.connect_kwargs(), timeout=_CONNECT_TIMEOUT_S)
    try:
        async with conn.transaction():
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", app.username)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(f"{verb} ROLE {role} WITH LOGIN PASSWORD {verifier}")
            for group in groups:
                await conn.execute(f"GRANT {quote_ident(group)} TO {role}")
    finally:
        await conn.close()
    probe = await asyncpg.connect(**app.connect_kwargs(), timeout=_CONNECT_TIMEOUT_S)
    try:
        await probe.fetchval("SELECT 1")
    finally:
        await probe.close()
    action = "altered" if exists else "created"
    log.info("secret.database_reconciled", secret=app_name, role=app.username, action=action)
    return ReconcileOutcome(app.username, action, version_id)
