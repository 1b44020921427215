"""Versioned plain-SQL migrations, applied at boot under an advisory lock.

Migrations are the package files `kb_mcp/db/migrations/NNNN_name.sql`, applied in version
order, each in its own transaction together with its row in `schema_migrations(version,
name, checksum, applied_at)`. The whole run holds a session advisory lock, so two
processes starting at once against an empty database apply each migration exactly once:
the second waits, then finds nothing left to do.

A migration's checksum is the SHA-256 of its file as shipped (before placeholders are
filled in); a changed checksum for an applied version stops the boot, because the
database no longer matches the code. The embedding dimension N is templated in as an
integer (`{{dimensions}}`); once the tables exist, a different N is refused with a clear
error instead of corrupting the schema.

Roles: with AWS multi-user rotation two login roles take turns. Both must be members of
the role that owns the schema (for `public` on PostgreSQL 15+, the database owner);
`kb-mcp secrets rotate` creates the clone user with the same memberships. Each migration
runs `SET LOCAL ROLE` to that owner when the login role is a member and not the owner
itself, so every object belongs to the shared owner and either login role can use and
migrate it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from kb_mcp.db.port import AnyConnection, ConnectionSource
from kb_mcp.db.vectors import check_dimensions, chunk_index_sql
from kb_mcp.errors import DatabaseError, DatabaseUnavailableError

__all__ = ["MIGRATION_LOCK_KEY", "Migration", "apply_migrations", "load_migrations"]

log = structlog.get_logger(__name__)

MIGRATION_LOCK_KEY = int.from_bytes(b"kbmcpmig", "big")
"""The `pg_advisory_lock` key every kb-mcp process takes while migrating (fits a bigint)."""

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

_OWNER = """
SELECT quote_ident(owner) AS owner, owner = current_user AS is_owner,
       pg_has_role(current_user, owner, 'MEMBER') AS is_member
FROM (
    SELECT CASE WHEN pg_get_userbyid(n.nspowner) = 'pg_database_owner'
                THEN pg_get_userbyid(d.datdba) ELSE pg_get_userbyid(n.nspowner) END AS owner
    FROM pg_namespace n, pg_database d
    WHERE n.nspname = coalesce(current_schema(), 'public') AND d.datname = current_database()
) AS schema_owner
"""

_EMBEDDING_TYPES = """
SELECT c.relname AS table_name, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE a.attrelid IN (to_regclass('documents'), to_regclass('chunks'))
  AND a.attname = 'embedding' AND NOT a.attisdropped
ORDER BY c.relname
"""

_SCHEMA_ERRORS: tuple[type[Exception], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)
_CONNECTION_ERRORS: tuple[type[Exception], ...] = (OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version, name, SQL template and checksum."""

    version: int
    name: str
    template: str

    @property
    def label(self) -> str:
        """`0001_documents`."""
        return f"{self.version:04d}_{self.name}"

    @property
    def checksum(self) -> str:
        """SHA-256 of the file as shipped."""
        return hashlib.sha256(self.template.encode("utf-8")).hexdigest()

    def render(self, dimensions: int) -> str:
        """The SQL with its placeholders filled in (integers and fixed SQL only)."""
        values = {
            "dimensions": str(check_dimensions(dimensions)),
            "chunk_index": chunk_index_sql(dimensions),
        }

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise DatabaseError(f"migration {self.label} has an unknown placeholder {key}")
            return values[key]

        return _PLACEHOLDER.sub(fill, self.template)


def load_migrations() -> list[Migration]:
    """Every packaged migration, in version order."""
    folder = resources.files("kb_mcp.db").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise DatabaseError(f"two migrations share version {version:04d}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def apply_migrations(
    source: ConnectionSource,
    *,
    dimensions: int,
    migrations: list[Migration] | None = None,
) -> list[str]:
    """Apply every pending migration; the labels of those applied now (empty if none)."""
    try:
        check_dimensions(dimensions)
    except ValueError as exc:
        raise DatabaseError(str(exc), hint="check KB_MCP_EMBEDDING_DIMENSIONS") from exc
    plan = load_migrations() if migrations is None else migrations
    try:
        async with source.acquire() as conn:
            try:
                # A migration may outlast a request's statement timeout (kb_mcp.db.pool):
                # none for this session; `_unlock` puts the connection's default back.
                await conn.execute("SET statement_timeout = 0")
                await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            except _SCHEMA_ERRORS as exc:
                raise _schema_error("could not take the migration lock", exc) from exc
            try:
                return await _apply_locked(conn, plan, dimensions)
            finally:
                await _unlock(conn)
    except _CONNECTION_ERRORS as exc:
        raise DatabaseUnavailableError(
            f"database connection lost while migrating ({type(exc).__name__})",
            hint="check the database host and that it stays up during the boot",
        ) from exc


async def _apply_locked(conn: AnyConnection, plan: list[Migration], dimensions: int) -> list[str]:
    try:
        # As the login role, before any SET ROLE: creating the extension may need its rights.
        if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'vector'"):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except _SCHEMA_ERRORS as exc:
        raise _schema_error("the vector extension is missing", exc) from exc
    try:
        async with conn.transaction():
            await _assume_owner(conn)
            await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    except _SCHEMA_ERRORS as exc:
        raise _schema_error("could not read schema_migrations", exc) from exc
    applied = {int(row["version"]): (str(row["name"]), str(row["checksum"])) for row in rows}
    known = {m.version for m in plan}
    for migration in plan:
        if migration.version in applied and applied[migration.version][1] != migration.checksum:
            raise DatabaseError(
                f"migration {migration.label} was changed after it was applied (checksum mismatch)",
                hint="restore the original migration file and add a new migration instead",
            )
    newer = sorted(v for v in applied if v not in known)
    if newer:
        log.warning("db.schema_newer_than_code", versions=newer)
    await _check_dimensions(conn, dimensions)
    done: list[str] = []
    for migration in plan:
        if migration.version in applied:
            continue
        sql = migration.render(dimensions)
        try:
            async with conn.transaction():
                await _assume_owner(conn)
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        except _SCHEMA_ERRORS as exc:
            raise _schema_error(f"migration {migration.label} failed", exc) from exc
        log.info("db.migration_applied", migration=migration.label, dimensions=dimensions)
        done.append(migration.label)
    await _check_dimensions(conn, dimensions)
    if not done:
        log.debug("db.migrations_up_to_date", latest=max(known, default=0))
    return done


async def _assume_owner(conn: AnyConnection) -> None:
    """Inside a transaction: act as the schema's owner when we are a member but not it."""
    row = await conn.fetchrow(_OWNER)
    if row is None or row["is_owner"] or not row["is_member"]:
        return
    await conn.execute(f"SET LOCAL ROLE {row['owner']}")


async def _check_dimensions(conn: AnyConnection, dimensions: int) -> None:
    expected = f"vector({dimensions})"
    for row in await conn.fetch(_EMBEDDING_TYPES):
        if row["type"] != expected:
            raise DatabaseError(
                f"{row['table_name']}.embedding is {row['type']} but "
                f"KB_MCP_EMBEDDING_DIMENSIONS is {dimensions}",
                hint=(
                    "the embedding dimension of an existing knowledge base cannot change: "
                    "set KB_MCP_EMBEDDING_DIMENSIONS back, or point kb-mcp at a new database"
                ),
            )


async def _unlock(conn: AnyConnection) -> None:
    # A broken connection releases its session lock when it closes; nothing to undo then.
    # The pool keeps sessions on release (kb_mcp.db.pool): a connection whose unlock
    # failed is closed, so the lock never outlives the migration.
    try:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await conn.execute("RESET statement_timeout")
    except (*_SCHEMA_ERRORS, *_CONNECTION_ERRORS) as exc:
        log.warning("db.migration_unlock_failed", error=type(exc).__name__)
        conn.terminate()


def _schema_error(what: str, exc: Exception) -> DatabaseError:
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return DatabaseError(
            f"{what}: permission denied ({exc})",
            hint=(
                "the database user must be a member of the role owning the schema, and the "
                "vector extension must exist or be creatable (CREATE EXTENSION vector, run "
                "once by an administrator)"
            ),
        )
    if isinstance(exc, asyncpg.UndefinedFileError | asyncpg.FeatureNotSupportedError):
        return DatabaseError(
            f"{what}: {exc}", hint="install pgvector 0.7 or later on the database server"
        )
    return DatabaseError(f"{what}: {type(exc).__name__}: {exc}")
