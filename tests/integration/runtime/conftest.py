"""Fixtures for runtime tests: one `RuntimeEnv` per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kb_mcp.devstack.postgres import PostgresCluster
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runtime_env import RuntimeEnv, open_runtime_env


@pytest.fixture
async def env(
    aws_env: str,
    pg_cluster: PostgresCluster,
    app_database: AppDatabase,
    fake_openai: FakeOpenAIServer,
) -> AsyncIterator[RuntimeEnv]:
    """Secrets in moto, a database with roles a and b, an embeddings endpoint."""
    async with open_runtime_env(aws_env, pg_cluster, app_database, fake_openai) as runtime_env:
        yield runtime_env
