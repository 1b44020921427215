"""Writes whose answer is true: stored, nothing stored, or outcome unknown.

`committed(source, operation, body)` runs `body(conn)` in a transaction and commits it,
and tells the three outcomes apart:

- anything failing before COMMIT: the transaction never committed, so nothing was stored
  (`DatabaseError`, `DatabaseUnavailableError` when the connection was the problem);
- the connection lost *during* COMMIT (a socket error, SQLSTATE class 08 or 57 such as
  `pg_terminate_backend`, or asyncpg's `InternalClientError` from a protocol left
  half-way by the dead connection): the server may or may not have committed, so
  `DatabaseOutcomeUnknownError`; any other error at COMMIT means it was refused
  (rolled back, nothing stored);
- after a successful COMMIT the write is stored, whatever returning the connection to
  the pool does afterwards: a failing release is logged, never reported as a failure;
- a body that decided to write nothing (an equal document, a duplicate, a stale plan)
  returns `Unwritten(value)`: the transaction is rolled back, not committed, and `value`
  is the answer, so a connection lost at that point cannot make "nothing to do" unknown.

Why asyncpg raises `InternalClientError` ("cannot switch to state 15; another operation
(2) is in progress"): when the server kills a backend, the FATAL error can arrive while a
statement is being prepared; the protocol answers with a Sync and waits in its
error-consume state (2) for a ReadyForQuery that never comes, the connection closes, and
the next statement on that connection object (the ROLLBACK of `async with transaction()`,
the COMMIT, the pool's reset at release: simple queries, state 15) fails with this error
instead of "connection closed". It is a dead connection, and is treated as one here; the
transaction is rolled back by hand so its error never hides the original one.

A request's deadline (`kb_mcp.deadline`) cut off during COMMIT is told the same way: the
scope is marked while the COMMIT is in flight, so its `DeadlineExceededError` says
"unknown" there, "nothing" before, "stored" after.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import asyncpg
import structlog
from asyncpg.transaction import Transaction

from kb_mcp.db.port import AnyConnection, ConnectionSource
from kb_mcp.deadline import note_outcome
from kb_mcp.errors import DatabaseError, DatabaseOutcomeUnknownError, DatabaseUnavailableError

__all__ = [
    "CONNECTION_ERRORS",
    "Unwritten",
    "committed",
    "database_errors",
    "is_connection_loss",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
"""Errors that mean the connection (not the statement) failed."""


@dataclass(frozen=True, slots=True)
class Unwritten(Generic[T_co]):
    """A body's answer when it wrote nothing: roll back instead of committing."""

    value: T_co


def is_connection_loss(exc: BaseException) -> bool:
    """True when `exc` says the connection went away rather than the statement failing."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate.startswith(("08", "57"))
    return False


@asynccontextmanager
async def database_errors(operation: str) -> AsyncIterator[None]:
    """Turn driver and socket errors into `DatabaseError` naming the operation."""
    try:
        yield
    except DatabaseError:
        raise
    except asyncpg.PostgresError as exc:
        if is_connection_loss(exc):
            log.error(
                "db.connection_failed",
                operation=operation,
                sqlstate=exc.sqlstate,
                error=type(exc).__name__,
            )
            raise DatabaseUnavailableError(
                f"database connection lost during {operation} ({type(exc).__name__})"
            ) from exc
        log.error(
            "db.query_failed", operation=operation, sqlstate=exc.sqlstate, error=type(exc).__name__
        )
        raise DatabaseError(f"database {operation} failed ({type(exc).__name__})") from exc
    except CONNECTION_ERRORS as exc:
        log.error("db.connection_failed", operation=operation, error=type(exc).__name__)
        raise DatabaseUnavailableError(
            f"database unreachable during {operation} ({type(exc).__name__})"
        ) from exc


async def committed(
    source: ConnectionSource,
    operation: str,
    body: Callable[[AnyConnection], Awaitable[T | Unwritten[T]]],
) -> T:
    """`body(conn)` in a transaction, committed; raises only when nothing, or maybe nothing,
    was stored (see the module docstring)."""
    result: list[T] = []
    try:
        async with database_errors(operation), source.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                value = await body(conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    await transaction.rollback()  # a dead connection: nothing to roll back
                raise
            if isinstance(value, Unwritten):
                with contextlib.suppress(Exception):
                    await transaction.rollback()  # nothing was written either way
                result.append(value.value)
            else:
                await _commit(transaction, operation)
                result.append(value)
    except Exception as exc:
        if not result:
            raise
        # Committed: only giving the connection back failed. The write stands.
        log.warning("db.release_failed", operation=operation, error=type(exc).__name__)
    return result[0]


async def _commit(transaction: Transaction, operation: str) -> None:
    """COMMIT; a connection lost during it is `DatabaseOutcomeUnknownError`."""
    before = note_outcome("unknown")  # a deadline cutting in here cannot know either
    try:
        await transaction.commit()
    except Exception as exc:
        if not is_connection_loss(exc):
            note_outcome(before)  # refused: rolled back, nothing of this one stored
            raise
        log.error("db.commit_outcome_unknown", operation=operation, error=type(exc).__name__)
        raise DatabaseOutcomeUnknownError(
            f"database connection lost during the commit of {operation} ({type(exc).__name__})"
        ) from exc
    note_outcome("stored")
