"""The MCP handshake names the server and its version, from the package metadata."""

from __future__ import annotations

import importlib.metadata

from mcp import Client

from kb_mcp.server.tools import build_mcp_server
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import kb_stack


async def test_server_info_version_is_the_installed_version(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """`serverInfo.version` is kb-mcp's installed version, never an empty string."""
    async with (
        kb_stack(app_database, fake_openai, openai_api_key) as stack,
        Client(build_mcp_server(stack.context)) as client,
    ):
        info = client.server_info
    assert info is not None
    assert info.version == importlib.metadata.version("kb-mcp")
    assert info.version
