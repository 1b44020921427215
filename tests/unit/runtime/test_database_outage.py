"""`DatabaseOutage`: /readyz keeps a task in service through a short database outage."""

from __future__ import annotations

from secretswap.testing import ManualClock

from kb_mcp.runtime.health import DatabaseOutage


def test_a_short_outage_keeps_the_task_in_service_and_a_long_one_does_not() -> None:
    """Failed probes within the grace: in service; past it: out; an answer resets it."""
    clock = ManualClock()
    outage = DatabaseOutage(grace_s=30.0, clock=clock)
    assert outage.record(False)
    clock.advance(29.0)
    assert outage.record(False)
    clock.advance(2.0)
    assert not outage.record(False)
    assert outage.record(True)
    clock.advance(100.0)
    assert outage.record(False)  # a new outage starts its own grace
