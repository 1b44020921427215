"""`kb_mcp.deadline`: one deadline per unit of work, inherited, never extended, truthful."""

from __future__ import annotations

import asyncio

import pytest

from kb_mcp.deadline import Outcome, capped, current, deadline, note_outcome, remaining
from kb_mcp.errors import DeadlineExceededError


async def test_work_past_its_budget_is_cancelled_and_says_nothing_was_written() -> None:
    """A wait that never ends is cut off at the budget: `DeadlineExceededError`, "nothing"."""
    never = asyncio.Event()
    with pytest.raises(DeadlineExceededError) as caught:
        async with deadline(0.05, what="kb_search"):
            await never.wait()
    assert caught.value.outcome == "nothing"
    assert caught.value.budget_s == 0.05
    assert "kb_search did not finish within its budget of 0.05 s" in str(caught.value)
    assert current() is None


async def _cut_off(*notes: Outcome) -> None:
    """Note `notes`, then wait past a 0.05 s deadline."""
    async with deadline(0.05):
        for outcome in notes:
            note_outcome(outcome)
        await asyncio.Event().wait()


async def test_a_deadline_in_a_commit_says_unknown_and_after_it_stored() -> None:
    """The outcome noted when the deadline fires is the one reported."""
    with pytest.raises(DeadlineExceededError) as in_commit:
        await _cut_off("unknown")
    assert in_commit.value.outcome == "unknown"
    with pytest.raises(DeadlineExceededError) as after_commit:
        await _cut_off("unknown", "stored")
    assert after_commit.value.outcome == "stored"


async def test_an_inner_scope_never_extends_the_outer_one() -> None:
    """Inside a 1 s scope, a 60 s scope is the same deadline; a shorter one is its own."""
    async with deadline(1.0) as outer:
        async with deadline(60.0) as inner:
            assert inner is outer
            left = remaining()
            assert left is not None
            assert left <= 1.0
        async with deadline(0.5) as shorter:
            assert shorter is not outer
            assert capped(30.0) <= 0.5
        assert current() is outer


async def test_a_timeout_from_inside_is_not_taken_for_the_deadline() -> None:
    """A TimeoutError raised by the work itself passes through as it is."""
    with pytest.raises(TimeoutError) as caught:
        async with deadline(60.0):
            raise TimeoutError("the work's own")
    assert not isinstance(caught.value, DeadlineExceededError)


async def test_outside_any_scope_nothing_is_capped() -> None:
    """No deadline: `remaining` is None, `capped` returns the timeout, notes are ignored."""
    assert remaining() is None
    assert capped(30.0) == 30.0
    assert note_outcome("unknown") == "nothing"


async def test_the_reserve_cuts_the_work_off_before_the_answer_is_due() -> None:
    """With a reserve the work has less than the budget, the cleanup the rest; the reserve
    never exceeds a quarter of the budget."""
    async with deadline(1.0, reserve_s=0.5) as scope:
        work, answer = scope.remaining(), scope.answer_remaining()
        assert work <= 0.75
        assert answer > work
        assert answer <= 1.0
