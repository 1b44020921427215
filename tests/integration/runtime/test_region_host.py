"""A failover region's database: the replica secret carries the primary's host, and
KB_MCP_DB_HOST_OVERRIDE sends this region's tasks to their own endpoint."""

from __future__ import annotations

import pytest

from kb_mcp.config import load_settings
from kb_mcp.runtime.supervisor import boot_runtime
from tests.support.runtime_env import RuntimeEnv

PRIMARY_HOST = "db.primary-region.invalid"  # .invalid never resolves (RFC 2606)


async def test_the_override_host_serves_while_the_secret_names_the_primary(
    env: RuntimeEnv,
) -> None:
    """With the secret pointing at an unreachable primary host, the pool connects to the
    override and /readyz's identity names it."""
    await env.put(env.postgres_secret, env.postgres_json("a", host=PRIMARY_HOST))
    settings = env.settings(db_host_override=env.app.host)
    async with boot_runtime(settings) as runtime:
        assert await runtime.pool.fetchval("SELECT 1") == 1
        generation = runtime.pool._swap.current  # the one place a test reaches inside
        assert f"@{env.app.host}:" in generation.resource.identity
        assert PRIMARY_HOST not in generation.resource.identity


def test_the_override_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """KB_MCP_DB_HOST_OVERRIDE is the setting; unset, the secret's host is used (None)."""
    monkeypatch.delenv("KB_MCP_DB_HOST_OVERRIDE", raising=False)
    assert load_settings().db_host_override is None
    monkeypatch.setenv("KB_MCP_DB_HOST_OVERRIDE", "kb.cluster-ro.us-west-2.rds.amazonaws.com")
    assert load_settings().db_host_override == "kb.cluster-ro.us-west-2.rds.amazonaws.com"
