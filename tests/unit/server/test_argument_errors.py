"""Refused arguments in plain words, unknown arguments refused, one set of limits everywhere."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import pytest
from mcp import Client
from pydantic import BaseModel, ConfigDict, Field

from kb_mcp.server.strict_tools import StrictToolsServer
from kb_mcp.server.tools import build_mcp_server
from kb_mcp.server.validation import (
    MAX_CONTENT_CHARS,
    MAX_EXTERNAL_ID_CHARS,
    MAX_QUERY_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
)
from tests.support.mcp_calls import call_refused
from tests.unit.server.test_tools import _context

_VALIDATOR_WORDS = ("pydantic", "validation error", "type=", "input_value", "Arguments", "http")
_ID = "3f0c8a9e-2a51-4a7e-9a0e-4d1c2b7f9e10"


def _plain(text: str) -> str:
    for word in _VALIDATOR_WORDS:
        assert word not in text, text
    return text


def _over(field: str, size: int, limit: int) -> str:
    return f"{field} is {size} characters; the limit is {limit}"


_LIMIT = "limit must be an integer from 1 to 50, got"
_Q = {"query": "q"}
_DOC = {"title": "t", "content": "c"}
_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("kb_search", {**_Q, "limit": "5"}, f"{_LIMIT} a string"),
    ("kb_search", {**_Q, "limit": "five"}, f"{_LIMIT} a string"),
    ("kb_list", {"limit": 2.5}, f"{_LIMIT} a number with a fraction"),
    ("kb_search", {**_Q, "limit": True}, f"{_LIMIT} true"),
    ("kb_search", {"query": 5}, f"query must be a string of at most {MAX_QUERY_CHARS} characters"),
    ("kb_search", {**_Q, "mode": "fuzzy"}, "mode must be one of hybrid, vector, keyword"),
    ("kb_add", {"content": "c"}, "title is required"),
    (
        "kb_add",
        {**_DOC, "content": "c" * 1_000_000},
        _over("content", 1000000, MAX_CONTENT_CHARS),
    ),
    (
        "kb_add",
        {**_DOC, "title": "t" * 2_000},
        _over("title", 2000, MAX_TITLE_CHARS),
    ),
    (
        "kb_add",
        {**_DOC, "tags": "ops"},
        f"tags must be a list of strings (at most {MAX_TAGS}), got a string",
    ),
    ("kb_add", {**_DOC, "tags": ["a", 7]}, "tags[1] must be a string"),
    (
        "kb_add",
        {**_DOC, "tags": ["x" * 200]},
        _over("tags[0]", 200, MAX_TAG_CHARS),
    ),
    (
        "kb_search",
        {**_Q, "tags": ["x" * 200]},
        _over("tags[0]", 200, MAX_TAG_CHARS),
    ),
    ("kb_add", {**_DOC, "tags": ["t"] * 40}, f"tags has 40 entries; the limit is {MAX_TAGS}"),
    (
        "kb_add",
        {**_DOC, "external_id": "e" * 600},
        _over("external_id", 600, MAX_EXTERNAL_ID_CHARS),
    ),
    ("kb_add", {**_DOC, "metadata": [1]}, "metadata must be a JSON object, got a list"),
    (
        "kb_update",
        {"id": _ID, "content": "c" * 300_000},
        _over("content", 300000, MAX_CONTENT_CHARS),
    ),
    (
        "kb_update",
        {"id": _ID, "tags": ["x" * 100]},
        _over("tags[0]", 100, MAX_TAG_CHARS),
    ),
    (
        "kb_update",
        {"external_id": "e" * 300, "tags": ["t"]},
        _over("external_id", 300, MAX_EXTERNAL_ID_CHARS),
    ),
    ("kb_update", {"external_id": 7, "tags": ["t"]}, "external_id must be a string"),
    ("kb_get", {"id": 7}, "id must be a string"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), _REFUSED)
async def test_a_refused_argument_is_named_with_what_is_wrong_and_its_limit(
    tool: str, arguments: dict[str, Any], expected: str
) -> None:
    """Refused before the tool runs: the field, what is wrong, the limit; no validator text."""
    async with Client(build_mcp_server(_context())) as client:
        text = _plain(await call_refused(client, tool, arguments))
    assert expected in text, text


async def test_an_unknown_argument_is_refused_naming_it_and_what_the_tool_takes() -> None:
    """bogus_arg is refused (not silently dropped), with the tool's own arguments listed."""
    async with Client(build_mcp_server(_context())) as client:
        text = _plain(await call_refused(client, "kb_search", {"query": "q", "bogus_arg": 1}))
        assert "unknown argument 'bogus_arg' (kb_search takes query, limit, tags, mode, " in text
        long_name = _plain(await call_refused(client, "kb_get", {"id": _ID, "k" * 5_000: 1}))
        assert len(long_name) < 300
        # The session is still usable after refusals.
        assert {t.name for t in (await client.list_tools()).tools} >= {"kb_add", "kb_search"}


async def test_kb_update_names_its_document_by_id_or_external_id_in_its_schema() -> None:
    """kb_update's schema requires neither id nor external_id (exactly one is checked), and an
    unknown argument's message lists external_id among what kb_update takes."""
    schema = (await _schemas())["kb_update"]
    assert {"id", "external_id", "namespace"} <= set(schema["properties"])
    assert not {"id", "external_id"} & set(schema.get("required", []))
    async with Client(build_mcp_server(_context())) as client:
        text = _plain(await call_refused(client, "kb_update", {"key": "k", "tags": ["t"]}))
        assert "(kb_update takes id, external_id, title, content, tags, metadata, namespace)" in (
            text
        )
        neither = _plain(await call_refused(client, "kb_update", {"tags": ["t"]}))
        both = _plain(
            await call_refused(client, "kb_update", {"id": _ID, "external_id": "k", "tags": ["t"]})
        )
    assert "give exactly one of id or external_id" in neither
    assert "give exactly one of id or external_id" in both


async def test_several_refused_arguments_are_each_named_once() -> None:
    """Two bad arguments: two sentences, one per field."""
    async with Client(build_mcp_server(_context())) as client:
        text = await call_refused(client, "kb_search", {"query": 1, "limit": "5", "x": 0})
    assert text.count("query must be") == 1
    assert "limit must be" in text
    assert "'x'" in text


async def _schemas() -> dict[str, dict[str, Any]]:
    async with Client(build_mcp_server(_context())) as client:
        return {t.name: t.input_schema for t in (await client.list_tools()).tools}


async def test_every_input_schema_refuses_unknown_properties() -> None:
    """additionalProperties is false on every tool, so clients know before they call."""
    for name, schema in (await _schemas()).items():
        assert schema.get("additionalProperties") is False, name


def _limits(node: Any, path: str = "") -> Iterator[tuple[str, str, int]]:
    if isinstance(node, Mapping):
        for key in ("maxLength", "maxItems"):
            if key in node:
                yield path, key, node[key]
        for key, value in node.items():
            yield from _limits(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _limits(value, f"{path}/{index}")


async def test_the_schemas_say_the_limits_the_validators_enforce() -> None:
    """Every maxLength and maxItems in every schema is one of validation.py's limits, per field."""
    expected = {
        "title": MAX_TITLE_CHARS,
        "content": MAX_CONTENT_CHARS,
        "query": MAX_QUERY_CHARS,
        "external_id": MAX_EXTERNAL_ID_CHARS,
    }
    seen = 0
    for tool, schema in (await _schemas()).items():
        for path, key, value in _limits(schema.get("properties", {})):
            field = path.split("/")[1]
            if field == "tags":
                assert value == (MAX_TAGS if key == "maxItems" else MAX_TAG_CHARS), (tool, path)
            elif field in expected:
                assert value == expected[field], (tool, path, value)
            seen += 1
    assert seen >= 15


async def test_descriptions_are_dedented() -> None:
    """No line of a tool description keeps the docstring's indentation."""
    async with Client(build_mcp_server(_context())) as client:
        for tool in (await client.list_tools()).tools:
            assert tool.description
            assert not any(line.startswith(" ") for line in tool.description.splitlines())


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a nested model says so itself
    title: Annotated[str, Field(max_length=5)]


async def test_nested_arguments_are_named_by_their_path() -> None:
    """A tool taking a list of objects (a batch): errors say items[1].title, unknown fields too."""
    server: StrictToolsServer[None] = StrictToolsServer("t")

    async def batch(items: list[_Item]) -> int:
        """Count items."""
        return len(items)

    server.add_tool(batch, name="batch")
    async with Client(server) as client:
        text = await call_refused(client, "batch", {"items": [{"title": "a"}, {"title": 7}]})
        assert "items[1].title must be a string of at most 5 characters, got an integer" in text
        text = await call_refused(client, "batch", {"items": [{"title": "a", "extra": 1}]})
        assert "unknown field 'extra' in items[0]" in text
        text = await call_refused(client, "batch", {"items": [{"title": "abcdefgh"}]})
        assert "items[0].title is 8 characters; the limit is 5" in text
