"""Hypothesis over the tools' argument schemas: every call is an answer or a clear tool error.

Arguments are drawn from each tool's own JSON schema shape, widened with hostile values
(wrong types, huge and empty strings, NULs and lone surrogates, deep and wide metadata,
non-ASCII digits, floats at the edge of the double range). For every call: the server
answers (no JSON-RPC error, no exception), a tool error names what is wrong (never a bare
"Error executing tool"), no rejected input reaches the database as a failing query, and
the server still answers afterwards.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_types import TextContent

from kb_mcp.server.tools import build_mcp_server
from tests.conftest import CapturedLogs
from tests.support.knowledge_base import KbStack

_BARE = re.compile(r"^Error executing tool kb_\w+:?\s*\w*(Error|Exception)?\s*$")
# What the tools say when a dependency failed (`kb_mcp.server.reporting.reported`). Matched as
# phrases: a validation error quotes the input, which may hold any word ("failed").
_DEPENDENCY_FAILED = re.compile(
    r"the (embeddings service failed|database is unavailable|database connection was lost"
    r"|server is shutting down)"
)

_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(["", " ", "\x00", "\ud800", "\u0661" * 36, "x" * 70, "t" * 600]),
)
_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=30,
)
_anything = st.one_of(_json, st.lists(_text, max_size=40))
_tags = st.one_of(st.none(), st.lists(_text, max_size=40), _anything)
_limit = st.one_of(
    st.integers(min_value=-5, max_value=60),
    st.sampled_from([True, False, "5", 1.0, 2.5, None, [5]]),
)
_id = st.one_of(st.uuids().map(str), _text, _anything)

_ARGUMENTS: dict[str, Any] = {
    "kb_add": st.fixed_dictionaries(
        {"title": st.one_of(_text, _anything), "content": st.one_of(_text, _anything)},
        optional={"tags": _tags, "metadata": st.one_of(_json, _anything), "external_id": _text},
    ),
    "kb_search": st.fixed_dictionaries(
        {"query": st.one_of(_text, _anything)}, optional={"limit": _limit, "tags": _tags}
    ),
    "kb_list": st.fixed_dictionaries(
        {}, optional={"limit": _limit, "cursor": st.one_of(_text, _anything), "tags": _tags}
    ),
    "kb_get": st.fixed_dictionaries({"id": _id}),
    "kb_delete": st.fixed_dictionaries({"id": _id}),
}
_CALLS = st.sampled_from(sorted(_ARGUMENTS)).flatmap(
    lambda tool: st.tuples(st.just(tool), _ARGUMENTS[tool])
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(_CALLS, min_size=1, max_size=4))
@example(calls=[("kb_add", {"title": "", "content": ["failed"]})])  # the input is quoted back
async def test_fuzzed_arguments_get_answers_or_clear_tool_errors(
    kb: KbStack, captured_logs: CapturedLogs, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    """Any arguments: a result or a tool error with a reason; nothing breaks the database."""
    failed_queries = len(captured_logs.events("db.query_failed"))
    failed_tools = len(captured_logs.events("tool.failed"))
    async with Client(build_mcp_server(kb.context)) as client:
        for tool, arguments in calls:
            result = await client.call_tool(tool, arguments)
            if result.is_error:
                text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
                assert text, (tool, arguments)
                assert not _BARE.match(text), (tool, arguments, text)
                assert not _DEPENDENCY_FAILED.search(text), (tool, arguments, text)
        healthy = await client.call_tool("kb_list", {"limit": 1})
        assert not healthy.is_error
    assert len(captured_logs.events("db.query_failed")) == failed_queries
    assert len(captured_logs.events("tool.failed")) == failed_tools
