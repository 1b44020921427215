"""`kb_mcp.db.ridethrough`: retries within the deadline, one probe at a time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from kb_mcp.db.ridethrough import Reconnect, ride_through
from kb_mcp.deadline import deadline, note_outcome
from kb_mcp.errors import (
    DatabaseAuthError,
    DatabaseError,
    DatabaseOutcomeUnknownError,
    DatabaseUnavailableError,
)


class GatedProbe:
    """A probe that fails until the gate opens; counts calls and concurrent calls."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.failed = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0)
            if not self.gate.is_set():
                self.failed.set()
                raise DatabaseUnavailableError("down")
            return 1
        finally:
            self.running -= 1


def flaky(failures: int, error: Exception) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    """A call failing `failures` times with `error`, then answering "ok"."""
    attempts: list[int] = []

    async def call() -> str:
        attempts.append(1)
        if len(attempts) <= failures:
            raise error
        return "ok"

    return attempts, call


async def test_many_waiters_share_one_probe_at_a_time() -> None:
    """Twenty requests waiting for the database: never two probes at once, and after the
    one that succeeds, nobody probes again."""
    probe = GatedProbe()
    reconnect = Reconnect(probe, base_s=0.001, max_s=0.002, rng=random.Random(1))
    waiters = [asyncio.ensure_future(reconnect.wait(0)) for _ in range(20)]
    await probe.failed.wait()
    probe.gate.set()
    await asyncio.gather(*waiters)
    assert probe.most_at_once == 1
    calls = probe.calls
    await reconnect.wait(0)  # a waiter that saw the old generation: already past
    assert probe.calls == calls
    assert reconnect.generation == 1


async def test_a_read_is_retried_until_the_database_answers() -> None:
    """Connection lost twice, then an answer: the caller sees the answer."""
    probe = GatedProbe()
    probe.gate.set()
    attempts, call = flaky(2, DatabaseUnavailableError("gone"))
    async with deadline(30.0):
        answer = await ride_through(call, Reconnect(probe), operation="kb_get")
    assert answer == "ok"
    assert len(attempts) == 3


async def test_without_a_deadline_nothing_is_retried() -> None:
    """Outside a deadline scope the first failure is the answer: no unbounded loop."""
    probe = GatedProbe()
    attempts, call = flaky(1, DatabaseUnavailableError("gone"))
    with pytest.raises(DatabaseUnavailableError):
        await ride_through(call, Reconnect(probe), operation="kb_get")
    assert len(attempts) == 1


async def test_other_errors_are_not_retried() -> None:
    """A statement's own error (not connection loss) is the answer at once."""
    probe = GatedProbe()
    attempts, call = flaky(1, DatabaseError("syntax"))
    async with deadline(30.0):
        with pytest.raises(DatabaseError):
            await ride_through(call, Reconnect(probe), operation="kb_get")
    assert len(attempts) == 1


async def test_a_cut_off_commit_is_resolved_once_then_reported() -> None:
    """`retry_once`: the retry runs once; cut off again, the caller is told."""
    probe = GatedProbe()
    probe.gate.set()
    attempts, call = flaky(5, DatabaseOutcomeUnknownError("cut"))
    async with deadline(30.0):
        with pytest.raises(DatabaseOutcomeUnknownError):
            await ride_through(
                call,
                Reconnect(probe),
                operation="kb_add",
                retry_once=(DatabaseOutcomeUnknownError,),
            )
    assert len(attempts) == 2


async def test_an_outage_longer_than_the_budget_fails_with_the_database_error() -> None:
    """The database never comes back: just before the deadline the caller gets the
    database's own error (what is known), not a bare timeout."""
    probe = GatedProbe()
    attempts, call = flaky(1000, DatabaseUnavailableError("gone"))
    with pytest.raises(DatabaseUnavailableError, match="gone"):
        async with deadline(0.2, what="kb_search"):
            await ride_through(
                call, Reconnect(probe, base_s=0.01, max_s=0.05), operation="kb_search"
            )
    assert len(attempts) == 1


async def test_a_probe_on_a_terminated_connection_counts_as_a_failed_probe() -> None:
    """A probe failing with the driver's own PostgresError (a backend terminated under it,
    SQLSTATE 08003) is a failed probe, retried after backoff, never an error for the request."""
    import asyncpg

    outcomes: list[BaseException | None] = [
        asyncpg.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.AdminShutdownError("terminating connection"),
        None,
    ]

    async def probe() -> object:
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return 1

    reconnect = Reconnect(probe, base_s=0.0, max_s=0.0, rng=random.Random(1))
    await reconnect.wait(reconnect.generation)
    assert reconnect.probes == 3
    assert reconnect.generation == 1


async def test_an_unresolved_cut_off_commit_stays_unknown_when_the_database_stays_away() -> None:
    """Cut off in COMMIT, then the database gone for good: the caller hears "unknown",
    never the "nothing stored" of a connection error."""

    async def call() -> str:
        note_outcome("unknown")  # what `committed` notes while its COMMIT is in flight
        raise DatabaseOutcomeUnknownError("cut")

    reconnect = Reconnect(GatedProbe(), base_s=0.01, max_s=0.05)  # never answers
    with pytest.raises(DatabaseOutcomeUnknownError, match="did not come back"):
        async with deadline(0.2):
            await ride_through(
                call,
                reconnect,
                operation="kb_add",
                retry_once=(DatabaseOutcomeUnknownError,),
            )


async def test_a_refused_probe_ends_the_wait_at_once() -> None:
    """The database answers but refuses the credentials: the caller gets that error now,
    not after waiting out its budget."""

    async def refused() -> object:
        raise DatabaseAuthError("database refused the credentials")

    attempts, call = flaky(1000, DatabaseUnavailableError("gone"))
    with pytest.raises(DatabaseAuthError):
        async with deadline(30.0):
            await ride_through(call, Reconnect(refused), operation="kb_search")
    assert len(attempts) == 1


async def test_requests_queued_behind_a_refused_probe_get_its_error_without_probing() -> None:
    """Ten requests waiting when the one probe is refused: all fail with that refusal, and
    only that one probe was made."""
    gate, probing = asyncio.Event(), asyncio.Event()
    calls = 0

    async def refused() -> object:
        nonlocal calls
        calls += 1
        probing.set()
        await gate.wait()
        raise DatabaseAuthError("database refused the credentials")

    reconnect = Reconnect(refused)
    waiters = [asyncio.ensure_future(reconnect.wait(0)) for _ in range(10)]
    await probing.wait()  # the first waiter probes; the nine started after it queue behind
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, DatabaseAuthError) for r in results)
    assert calls == 1
