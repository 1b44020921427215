"""One deadline per unit of work, inherited by everything it waits on.

`deadline(budget_s)` opens a scope (anyio's `fail_after`, on `asyncio.timeout`): the task
is cancelled when the budget runs out, and `DeadlineExceededError` comes out of the scope.
A context variable carries the instant, so code below it draws on what is left without
being passed anything: the pool's acquire (`capped(acquire_timeout_s)`), the embeddings
call (the client's timeout), a retry waiting for the database to come back. A scope
opened inside another never extends it: the earlier instant wins.

Cancellation reaches the far side: asyncpg answers a cancelled query with a cancel
request to the server, so a statement of a request past its deadline (or whose client
went away) stops running in PostgreSQL too.

What the caller is told depends on how far a write got (`DeadlineExceededError.outcome`):
`kb_mcp.db.outcome` marks the scope while a COMMIT is on the wire (`note_outcome`) and
after it returned, so the error says "nothing was stored", "outcome unknown", or
"stored" (the answer only was late), never more than is known.

This module sits just above `kb_mcp.errors`: `kb_mcp.db` and `kb_mcp.embeddings` both
import it, and it imports nothing else of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from kb_mcp.errors import DeadlineExceededError

__all__ = [
    "Deadline",
    "Outcome",
    "capped",
    "current",
    "deadline",
    "note_outcome",
    "remaining",
]

Outcome = Literal["nothing", "unknown", "stored"]
"""How far the writes of a scope got: none committed, a COMMIT cut off, committed."""


@dataclass(eq=False, slots=True)
class Deadline:
    """The instant (`loop.time()`) a unit of work must be done by, and its write state.

    `answer_at` is when the caller must have its answer; the work is cut off `reserve_s`
    earlier (`at`), leaving that long to clean up (confirm a statement's cancel, give the
    connection back) without making the answer late.
    """

    at: float
    budget_s: float
    answer_at: float = 0.0
    outcome: Outcome = "nothing"

    def remaining(self) -> float:
        """Seconds left for the work (never negative)."""
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def answer_remaining(self) -> float:
        """Seconds left before the answer is due (never negative)."""
        return max(0.0, max(self.at, self.answer_at) - asyncio.get_running_loop().time())


_current: ContextVar[Deadline | None] = ContextVar("kb_mcp_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the work running now, or None outside any scope."""
    return _current.get()


def remaining() -> float | None:
    """Seconds left before the current deadline, or None when there is none."""
    scope = _current.get()
    return None if scope is None else scope.remaining()


def capped(timeout_s: float) -> float:
    """`timeout_s`, or what is left of the current deadline when that is sooner."""
    left = remaining()
    return timeout_s if left is None else min(timeout_s, left)


def note_outcome(outcome: Outcome) -> Outcome:
    """Record how far the scope's writes got; returns what was recorded before.

    `kb_mcp.db.outcome` notes "unknown" while a COMMIT is in flight, "stored" once it
    returned, and puts back the previous state when the server refused it."""
    scope = _current.get()
    if scope is None:
        return "nothing"
    before = scope.outcome
    scope.outcome = outcome
    return before


@asynccontextmanager
async def deadline(
    budget_s: float, *, what: str = "request", reserve_s: float = 0.0
) -> AsyncIterator[Deadline]:
    """A scope that must finish within `budget_s` (or the enclosing scope's deadline).

    Past it the work is cancelled and `DeadlineExceededError` raised, its `outcome` saying
    how far any write got. `what` names the work in the message. `reserve_s` (at most a
    quarter of the budget) is kept for cleaning up after a cut-off: the work is cancelled
    that much before the answer is due (`Deadline.answer_remaining`).
    """
    loop = asyncio.get_running_loop()
    outer = _current.get()
    answer_at = loop.time() + budget_s
    at = answer_at - min(reserve_s, budget_s / 4)
    if outer is not None and outer.at <= at:
        yield outer  # an inner scope never extends the outer one; the outer one reports
        return
    scope = Deadline(at=at, budget_s=budget_s, answer_at=answer_at)
    token = _current.set(scope)
    timer = asyncio.timeout_at(at)
    try:
        async with timer:
            yield scope
    except TimeoutError as exc:
        if not timer.expired():
            raise  # a timeout of something inside, not this deadline
        raise DeadlineExceededError(
            f"{what} did not finish within its budget of {budget_s:g} s",
            budget_s=budget_s,
            outcome=scope.outcome,
        ) from exc
    finally:
        _current.reset(token)
