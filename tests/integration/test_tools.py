"""The five MCP tools through the SDK's in-process client, on real PostgreSQL and embeddings."""

from __future__ import annotations

import re
from typing import Any

from mcp import Client

from kb_mcp.server.context import AppContext
from kb_mcp.server.tools import build_mcp_server
from kb_mcp.server.validation import MAX_CONTENT_CHARS, MAX_METADATA_BYTES
from tests.conftest import CapturedLogs
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import CORPUS, KbStack
from tests.support.mcp_calls import call_ok, call_refused


def _connect(kb: KbStack) -> Client:
    # Entered inside each test: the client's task group must open and close in one task.
    return Client(build_mcp_server(kb.context))


async def test_tools_are_listed_with_typed_described_parameters(kb: KbStack) -> None:
    """Nine tools; their schemas carry types, descriptions, bounds and required fields."""
    async with _connect(kb) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {
            "kb_add",
            "kb_search",
            "kb_get",
            "kb_list",
            "kb_delete",
            "kb_update",
            "kb_namespaces",
            "kb_delete_namespace",
            "kb_add_many",
        }
        add = tools["kb_add"].input_schema
        assert sorted(add["required"]) == ["content", "title"]
        assert add["properties"]["content"]["maxLength"] == MAX_CONTENT_CHARS
        assert add["properties"]["tags"]["items"] == {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
        }
        assert add["properties"]["metadata"]["type"] == "object"
        limit = tools["kb_search"].input_schema["properties"]["limit"]
        assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 50, 5)
        assert all(tool.description for tool in tools.values())
        assert all(
            "description" in spec
            for tool in tools.values()
            for spec in tool.input_schema["properties"].values()
        )
        assert tools["kb_search"].annotations is not None
        assert tools["kb_search"].annotations.read_only_hint is True
        assert tools["kb_delete"].annotations is not None
        assert tools["kb_delete"].annotations.destructive_hint is True


async def test_add_search_get_list_delete(kb: KbStack) -> None:
    """The whole life of documents through the tools; the right document ranks first."""
    async with _connect(kb) as client:
        ids: dict[str, str] = {}
        for title, (content, tags) in CORPUS.items():
            added = await call_ok(
                client, "kb_add", {"title": title, "content": content, "tags": tags, "metadata": {}}
            )
            assert added["chunks"] == 1
            ids[title] = added["id"]
        found = await call_ok(
            client, "kb_search", {"query": "tune autovacuum dead tuples in postgres", "limit": 3}
        )
        hits = found["hits"]
        assert len(hits) == 3
        assert hits[0]["id"] == ids["Vacuuming PostgreSQL tables"]
        assert hits[0]["title"] == "Vacuuming PostgreSQL tables"
        assert "autovacuum" in hits[0]["snippet"]
        assert hits[0]["score"] > hits[1]["score"]
        filtered = await call_ok(client, "kb_search", {"query": "anything", "tags": ["biology"]})
        assert [h["id"] for h in filtered["hits"]] == [ids["Photosynthesis in plants"]]

        doc = await call_ok(client, "kb_get", {"id": ids["Baking sourdough bread"]})
        assert doc["content"] == CORPUS["Baking sourdough bread"][0]
        assert doc["tags"] == ["cooking"]
        assert doc["metadata"] == {}
        assert doc["created_at"].endswith("+00:00")

        first = await call_ok(client, "kb_list", {"limit": 3})
        assert first["total"] == len(CORPUS)
        assert len(first["documents"]) == 3
        rest = await call_ok(client, "kb_list", {"limit": 3, "cursor": first["next_cursor"]})
        assert rest["next_cursor"] is None
        listed = [d["id"] for d in first["documents"] + rest["documents"]]
        assert sorted(listed) == sorted(ids.values())
        ops = await call_ok(client, "kb_list", {"tags": ["ops"]})
        assert ops["total"] == 2

        gone = ids["Ownership and borrowing in Rust"]
        assert await call_ok(client, "kb_delete", {"id": gone}) == {"deleted": True}
        assert await call_ok(client, "kb_delete", {"id": gone}) == {"deleted": False}
        assert "no document has id" in await call_refused(client, "kb_get", {"id": gone})
        assert await kb.count("documents") == len(CORPUS) - 1


async def test_tags_and_metadata_are_normalised_and_kept(kb: KbStack) -> None:
    """Tags are stripped and de-duplicated; metadata comes back as stored."""
    async with _connect(kb) as client:
        metadata = {"url": "https://example.com/a", "n": 1, "list": [1, "two", None]}
        added = await call_ok(
            client,
            "kb_add",
            {"title": " T ", "content": "c", "tags": [" a", "a ", "b"], "metadata": metadata},
        )
        doc = await call_ok(client, "kb_get", {"id": added["id"]})
        assert (doc["title"], doc["tags"], doc["metadata"]) == ("T", ["a", "b"], metadata)


_GOOD = {"title": "t", "content": "c"}
_BAD_ADDS: list[tuple[dict[str, Any], str]] = [
    ({"title": "", "content": "c"}, "title must not be empty"),
    ({"title": "  \n", "content": "c"}, "title must not be empty"),
    ({"title": "t" * 501, "content": "c"}, "limit is 500"),
    ({"title": "t", "content": ""}, "content must not be empty"),
    ({"title": "t", "content": " \n\t "}, "content must not be empty"),
    ({"title": "t", "content": "x" * (MAX_CONTENT_CHARS + 1)}, "limit is 200000"),
    ({"title": "t", "content": "nul\x00here"}, "must not contain NUL"),
    ({**_GOOD, "tags": [f"t{i}" for i in range(33)]}, "tags has 33 entries; the limit is 32"),
    ({**_GOOD, "tags": ["x" * 65]}, "limit is 64"),
    ({**_GOOD, "tags": ["ok", ""]}, r"tags\[1\] must not be empty"),
    ({**_GOOD, "tags": ["ok", 7]}, r"tags\[1\] must be a string"),
    ({**_GOOD, "tags": "not-a-list"}, "tags"),
    ({**_GOOD, "metadata": ["not", "an", "object"]}, "metadata"),
    ({**_GOOD, "metadata": "text"}, "metadata"),
    ({**_GOOD, "metadata": {"big": "x" * MAX_METADATA_BYTES}}, "limit is 16384"),
    ({"content": "c"}, "title"),
    ({"title": "t"}, "content"),
]


async def test_bad_kb_add_input_is_a_tool_error_and_stores_nothing(kb: KbStack) -> None:
    """Each invalid kb_add argument is refused with a message naming it; nothing is written."""
    async with _connect(kb) as client:
        for arguments, message in _BAD_ADDS:
            text = await call_refused(client, "kb_add", arguments)
            assert re.search(message, text), (message, text)
    assert await kb.count("documents") == 0
    assert kb.backend.calls == []


_BAD_READS: list[tuple[str, dict[str, Any], str]] = [
    ("kb_search", {"query": ""}, "query must not be empty"),
    ("kb_search", {"query": "   "}, "query must not be empty"),
    ("kb_search", {"query": "q" * 4001}, "limit is 4000"),
    ("kb_search", {"query": "q", "limit": 0}, "limit must be an integer from 1 to 50, got 0"),
    ("kb_search", {"query": "q", "limit": 51}, "got 51"),
    ("kb_search", {"query": "q", "limit": "many"}, "limit"),
    ("kb_search", {"query": "q", "tags": "python"}, "tags"),
    ("kb_search", {"query": "q", "tags": [1, 2]}, "tags[0] must be a string"),
    ("kb_search", {"query": "q", "tags": {"a": 1}}, "tags"),
    ("kb_get", {"id": "not-a-uuid"}, "id must be a document id"),
    ("kb_get", {"id": 42}, "id"),
    ("kb_get", {}, "id"),
    ("kb_list", {"limit": 0}, "got 0"),
    ("kb_list", {"limit": 51}, "got 51"),
    ("kb_list", {"cursor": "garbage!"}, "cursor is not one kb_list returned"),
    ("kb_list", {"tags": "ops"}, "tags"),
    ("kb_delete", {"id": "123"}, "id must be a document id"),
]


async def test_bad_arguments_of_other_tools_are_tool_errors(kb: KbStack) -> None:
    """Bad queries, limits, ids, cursors and tag filters come back as clear tool errors."""
    async with _connect(kb) as client:
        for tool, arguments, message in _BAD_READS:
            text = await call_refused(client, tool, arguments)
            assert message in text, (tool, message, text)


async def test_a_failing_embeddings_service_is_named_and_nothing_is_stored(
    kb: KbStack, fake_openai: FakeOpenAIServer, captured_logs: CapturedLogs
) -> None:
    """kb_add during an embeddings outage: a tool error naming the service; no row written."""
    async with _connect(kb) as client:
        fake_openai.fail_next(1, 503)
        text = await call_refused(client, "kb_add", {"title": "t", "content": "some text"})
        assert "the embeddings service failed; nothing was stored" in text
        assert await kb.count("documents") == 0
        fake_openai.fail_next(1, 500)
        assert "embeddings service failed" in await call_refused(
            client, "kb_search", {"query": "q"}
        )
        failures = captured_logs.events("tool.failed")
        assert [(f["tool"], f["dependency"]) for f in failures] == [
            ("kb_add", "embeddings"),
            ("kb_search", "embeddings"),
        ]


async def test_a_failing_database_is_named_in_a_generic_message(kb: KbStack) -> None:
    """With the pool gone, tools say the database is unavailable, not the driver's words."""
    # A closed pool never comes back: each call waits out its (short) budget for it.
    broken = AppContext(db=kb.source, embedder=kb.embedder, request_timeout_s=1.0)
    async with Client(build_mcp_server(broken)) as client:
        await kb.source.pool.close()
        text = await call_refused(client, "kb_list", {})
        assert "the database is unavailable; try again later" in text
        assert "pool" not in text.lower()
        text = await call_refused(client, "kb_add", {"title": "t", "content": "c"})
        assert "the database is unavailable; nothing was stored" in text
