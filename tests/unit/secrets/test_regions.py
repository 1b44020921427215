"""`RegionFailover`: the order a read tries the regions in, and when reads move."""

from __future__ import annotations

import pytest
from secretswap.aws.regions import Region, RegionFailover
from secretswap.metrics import MetricsRegistry
from secretswap.testing import ManualClock

from tests.conftest import CapturedLogs

PRIMARY = Region("us-east-1")
WEST = Region("us-west-2", "http://127.0.0.1:1")
EU = Region("eu-west-1")


def _failover(clock: ManualClock, metrics: MetricsRegistry | None = None) -> RegionFailover:
    return RegionFailover(
        PRIMARY, [WEST, EU], failback_interval_s=30.0, clock=clock, metrics=metrics
    )


def _regions(failover: RegionFailover) -> list[tuple[str, bool]]:
    return [(a.region.name, a.probe) for a in failover.plan()]


def test_normal_plan_is_primary_then_replicas_in_order() -> None:
    """Not failed over: the primary (yielding to a failover), then each replica."""
    failover = _failover(ManualClock())
    plan = failover.plan()
    assert [a.region for a in plan] == [PRIMARY, WEST, EU]
    assert plan[0].yields
    assert not any(a.probe for a in plan)


def test_failed_over_plan_probes_the_primary_once_per_interval() -> None:
    """Failed over to us-west-2: one probe of the primary per interval, else the replica."""
    clock = ManualClock()
    failover = _failover(clock)
    failover.answered(WEST, secret="s", after_error="EndpointConnectionError")
    assert failover.failed_over
    assert _regions(failover) == [("us-west-2", False), ("eu-west-1", False), ("us-east-1", False)]
    clock.advance(30.0)
    assert _regions(failover)[0] == ("us-east-1", True)
    # The probe slot is taken until the next interval.
    assert _regions(failover)[0] == ("us-west-2", False)


def test_a_replica_answering_as_planned_moves_nothing() -> None:
    """A read served by a replica without an error before it (planned earlier) moves nothing."""
    metrics = MetricsRegistry()
    failover = _failover(ManualClock(), metrics)
    failover.answered(WEST, secret="s", after_error=None)
    assert failover.active is PRIMARY
    assert metrics.total("SecretsFailovers") == 0


def test_moves_are_counted_and_logged(captured_logs: CapturedLogs) -> None:
    """Failover to a replica, on to the next one, back to the primary: counted and logged."""
    metrics = MetricsRegistry()
    failover = _failover(ManualClock(), metrics)
    failover.answered(WEST, secret="s", after_error="ReadTimeoutError")
    failover.answered(EU, secret="s", after_error="EndpointConnectionError")
    assert _regions(failover)[0] == ("eu-west-1", False)
    failover.answered(PRIMARY, secret="s", after_error=None)
    events = captured_logs.records
    assert failover.active is PRIMARY
    assert (metrics.total("SecretsFailovers"), metrics.total("SecretsFailbacks")) == (2, 1)
    names = [(e["event"], e["region"], e["from_region"]) for e in events]
    assert names == [
        ("secrets.region_failover", "us-west-2", "us-east-1"),
        ("secrets.region_failover", "eu-west-1", "us-west-2"),
        ("secrets.region_returned", "us-east-1", "eu-west-1"),
    ]


def test_bad_configurations_are_refused() -> None:
    """A region listed twice or a non-positive interval: ValueError."""
    with pytest.raises(ValueError, match="twice"):
        RegionFailover(PRIMARY, [WEST, Region("us-east-1")])
    with pytest.raises(ValueError, match="positive"):
        RegionFailover(PRIMARY, [WEST], failback_interval_s=0)
