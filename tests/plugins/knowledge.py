"""The `kb` fixture: a knowledge base (store, embedder, app context) on the suite's servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import KbStack, kb_stack

__all__ = ["kb"]


@pytest.fixture
async def kb(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> AsyncIterator[KbStack]:
    """A migrated knowledge base on a fresh database, its embedder on the local endpoint."""
    async with kb_stack(app_database, fake_openai, openai_api_key) as stack:
        yield stack
