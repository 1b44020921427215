"""Every metric a runtime registers is one `METRIC_NAMES` lists (alarms refer to them)."""

from __future__ import annotations

from kb_mcp.observability.metrics import METRIC_NAMES
from kb_mcp.runtime.supervisor import boot_runtime
from tests.support.runtime_env import RuntimeEnv


async def test_a_booted_and_rotated_runtime_registers_only_listed_metrics(
    env: RuntimeEnv,
) -> None:
    """Boot, rotate both secrets, recover nothing: each counter's name is in METRIC_NAMES."""
    async with boot_runtime(env.settings()) as runtime:
        await env.rotate_postgres()
        await env.rotate_openai()
        await runtime.refresher.refresh_all()
        names = {name for name, _ in runtime.metrics.counters}
        names |= {name for name, _ in runtime.metrics.gauges}
    assert names <= set(METRIC_NAMES), sorted(names - set(METRIC_NAMES))
    assert {"PoolRotations", "OpenAIClientSwaps", "RotationsDetected"} <= names
