"""Each tool call and resource read within its budget, riding through a database restart.

`bounded(app, tool, call)` runs `call()` under one deadline of `app.request_timeout_s`
(`KB_MCP_REQUEST_TIMEOUT_S`): the pool's acquire, every statement (cancelled in the
server too when the deadline passes) and the embeddings call draw on it. Connection loss
is retried within it (`kb_mcp.db.ridethrough`): `READS` for read-only tools, `WRITES`
for kb_add and kb_update, whose retry resolves a cut-off commit (it finds what was
stored) rather than applying it twice. Past the deadline `DeadlineExceededError` says how
far a write got; `kb_mcp.server.reporting.reported` words it for the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from kb_mcp.db.pool import CANCEL_GRACE_S
from kb_mcp.db.ridethrough import Reconnect, probe_source, ride_through
from kb_mcp.deadline import Deadline, Outcome, current, deadline
from kb_mcp.errors import DatabaseOutcomeUnknownError, DatabaseUnavailableError
from kb_mcp.server.context import AppContext

__all__ = [
    "READS",
    "RESOLVED_ONCE",
    "WRITES",
    "bounded",
    "outcome_so_far",
    "request_scope",
]

T = TypeVar("T")

READS: tuple[type[Exception], ...] = (DatabaseUnavailableError,)
"""Read-only work: any connection loss is retried."""
WRITES: tuple[type[Exception], ...] = (DatabaseUnavailableError,)
"""Writes that find their own earlier attempt first (kb_add, kb_update): connection loss
before COMMIT is retried like a read, a cut-off commit (`RESOLVED_ONCE`) once."""
RESOLVED_ONCE: tuple[type[Exception], ...] = (DatabaseOutcomeUnknownError,)


async def bounded(
    app: AppContext,
    tool: str,
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[Exception], ...] = READS,
    retry_once: tuple[type[Exception], ...] = (),
) -> T:
    """`call()` within the request's budget, retried on `retry_on` while the budget lasts
    and on `retry_once` once."""
    reconnect = app.reconnect if app.reconnect is not None else Reconnect(probe_source(app.db))
    async with deadline(app.request_timeout_s, what=tool, reserve_s=CANCEL_GRACE_S):
        return await ride_through(
            call, reconnect, operation=tool, retry_on=retry_on, retry_once=retry_once
        )


def request_scope(app: AppContext, tool: str) -> AbstractAsyncContextManager[Deadline]:
    """The request's deadline, for a tool whose steps each run `bounded` (one budget for
    all of them: an inner scope never extends it)."""
    return deadline(app.request_timeout_s, what=tool, reserve_s=CANCEL_GRACE_S)


def outcome_so_far() -> Outcome:
    """How far the writes of the running request got (inside `bounded`)."""
    scope = current()
    return "nothing" if scope is None else scope.outcome
