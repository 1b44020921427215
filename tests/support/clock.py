"""A monotonic clock tests move by hand (for TTLs and staleness, never wall time): the
hot-swap library's `secretswap.testing.ManualClock`, under the name kb-mcp's tests use."""

from secretswap.testing import ManualClock as FakeClock

__all__ = ["FakeClock"]
