"""collector_paused: the collector off for the block, frozen and back on at resume()."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kb_mcp.runtime.collector import collector_paused


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:  # pragma: no cover - pytest runs with the collector on
        gc.disable()


def test_resume_freezes_what_exists_and_turns_the_collector_on() -> None:
    """Off inside the block; resume() moves every object to the permanent generation."""
    gc.enable()
    with collector_paused() as resume:
        assert not gc.isenabled()
        resume()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        resume()  # a second call changes nothing
        assert gc.isenabled()
    assert gc.isenabled()


def test_a_block_left_before_resume_turns_the_collector_back_on() -> None:
    """A boot that fails (or stops) before ready leaves the collector as it found it."""
    gc.enable()
    seen: list[bool] = []

    def failing_boot() -> None:
        with collector_paused():
            seen.append(gc.isenabled())
            raise RuntimeError("boot failed")

    with pytest.raises(RuntimeError):
        failing_boot()
    assert seen == [False]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_collector_that_was_off_stays_off() -> None:
    """Whoever turned it off before keeps it off, resumed or not."""
    gc.disable()
    with collector_paused() as resume:
        resume()
        assert not gc.isenabled()
    assert not gc.isenabled()
