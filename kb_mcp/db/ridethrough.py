"""Riding through a database restart: work retried on connection loss within its deadline.

`ride_through(call, reconnect)` runs `call()`; when it fails because the database went
away (`DatabaseUnavailableError`: refused connections, a connection cut mid-statement, the
server starting up), it waits for the database to answer again (`Reconnect.wait`) and
runs `call()` again, for as long as the request's deadline (`kb_mcp.deadline`) allows.
Without a deadline it never retries: an unbounded retry loop is not a policy.

What may be retried is the caller's decision (`retry_on`): read-only work on connection
loss; a write only when running it again cannot apply it twice, and a cut-off commit
(`retry_once`) once: the retry finds what it stored, or the caller is told the outcome
is unknown rather than the write being sent again and again. kb-mcp's writes are:
`kb_add` finds an earlier copy of itself first (by `external_id`, or by the content
hash, under an advisory lock), and `kb_update` with the same fields changes nothing, so
their "outcome unknown" (`DatabaseOutcomeUnknownError`) is resolved by running them
again: the retry finds what the cut-off commit stored, or stores it once.

`Reconnect` keeps a restart from becoming a thundering herd: one probe (`SELECT 1`
through the pool) at a time, with exponential backoff and full jitter between failed
probes; every request waiting meanwhile queues behind it and goes back to work as soon
as one probe succeeded after the failure it saw (`generation`), without a probe of its own.
A probe refused for its credentials (`DatabaseAuthError`, after the pool's own recovery
through the refresher) ends the wait at once: the database is there and says no, and
waiting out the budget would only make the caller's error late.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

import asyncpg
import structlog

from kb_mcp.db.outcome import CONNECTION_ERRORS, database_errors
from kb_mcp.db.port import ConnectionSource
from kb_mcp.deadline import current, remaining
from kb_mcp.errors import (
    DatabaseAuthError,
    DatabaseError,
    DatabaseOutcomeUnknownError,
    DatabaseUnavailableError,
)

__all__ = ["Reconnect", "probe_source", "ride_through"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

_PROBE_FAILURES: tuple[type[BaseException], ...] = (
    DatabaseError,
    asyncpg.PostgresError,
    *CONNECTION_ERRORS,
)
GIVE_UP_MARGIN_S = 0.05
"""A wait for the database ends this long before the deadline, so that the caller hears
the database's error (what it knows) rather than a bare timeout."""


def probe_source(source: ConnectionSource) -> Callable[[], Awaitable[object]]:
    """A probe that asks `source` for a connection and runs `SELECT 1` on it."""

    async def probe() -> object:
        async with database_errors("probe"), source.acquire() as conn:
            return await conn.fetchval("SELECT 1")

    return probe


@dataclass(eq=False)
class Reconnect:
    """Waits for the database to answer again: one probe at a time, backoff with jitter."""

    probe: Callable[[], Awaitable[object]]
    base_s: float = 0.05
    """The first backoff's ceiling; it doubles per failed probe up to `max_s`."""
    max_s: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    probes: int = 0
    """Probes made (for tests and figures)."""
    generation: int = 0
    """Bumped by each successful probe: a waiter that saw failure at generation g is done
    once it moved past g."""
    refusals: int = 0
    """Probes refused for their credentials; a waiter queued before one gets its error."""
    _refused: DatabaseAuthError | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def wait(self, seen: int) -> None:
        """Return once a probe succeeded after generation `seen`; cancelled by the deadline.

        A probe refused for its credentials ends the wait of everyone queued behind it
        with that error (no probe of their own: each would make the pool ask the
        refresher again, one after the other)."""
        refusals = self.refusals
        async with self._lock:
            ceiling = self.base_s
            while self.generation == seen:
                if self.refusals != refusals and self._refused is not None:
                    raise self._refused
                self.probes += 1
                try:
                    await self.probe()
                except DatabaseAuthError as exc:
                    self.refusals += 1
                    self._refused = exc
                    raise  # refused, not away: waiting would not bring it back
                except _PROBE_FAILURES as exc:
                    log.debug("db.reconnect_probe_failed", error=type(exc).__name__)
                    # Backoff between probes (full jitter), not a wait for an event: the
                    # database tells nobody when it is back.
                    await asyncio.sleep(self.rng.uniform(0, ceiling))
                    ceiling = min(self.max_s, ceiling * 2)
                else:
                    self.generation += 1


async def ride_through(
    call: Callable[[], Awaitable[T]],
    reconnect: Reconnect,
    *,
    operation: str,
    retry_on: tuple[type[Exception], ...] = (DatabaseUnavailableError,),
    retry_once: tuple[type[Exception], ...] = (),
) -> T:
    """`call()`, run again after each `retry_on` error once the database answers, within
    the current deadline; without a deadline, `call()` once. A `retry_once` error (a
    cut-off commit) is retried once: the retry resolves it, or the caller is told."""
    attempt = 1
    resolved = False
    while True:
        seen = reconnect.generation
        try:
            return await call()
        except (*retry_on, *retry_once) as exc:
            failure = exc
            left = remaining()
            if left is None or left <= 0:
                _raise_known(failure)
            if isinstance(exc, retry_once) and not isinstance(exc, retry_on):
                if resolved:
                    raise
                resolved = True
            log.info(
                "db.retrying",
                operation=operation,
                attempt=attempt,
                error=type(exc).__name__,
                remaining_s=round(left, 3),
            )
        attempt += 1
        await _wait_or_give_up(reconnect, seen, failure)


async def _wait_or_give_up(reconnect: Reconnect, seen: int, failure: Exception) -> None:
    """Wait for the database until just before the deadline; then raise what is known:
    the outcome is unknown when an earlier attempt's commit was cut off, else `failure`."""
    scope = current()
    if scope is None:
        raise failure
    waited = asyncio.timeout_at(scope.at - GIVE_UP_MARGIN_S)
    try:
        async with waited:
            await reconnect.wait(seen)
    except TimeoutError:
        pass
    except DatabaseAuthError as refused:
        _raise_known(refused)
    if not waited.expired():
        return
    _raise_known(failure)


def _raise_known(failure: Exception) -> NoReturn:
    """Raise what the caller may be told of `failure`: after a cut-off commit (noted in the
    deadline) any later failure is "outcome unknown", never "nothing stored"."""
    scope = current()
    if scope is not None and scope.outcome == "unknown":
        raise DatabaseOutcomeUnknownError(
            "database did not come back to resolve a commit that was cut off"
        ) from failure
    raise failure
