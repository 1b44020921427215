"""`id_problem`: which JSON-RPC messages have an id MCP does not allow."""

from __future__ import annotations

import json

import pytest

from kb_mcp.server.jsonrpc import error_body, id_problem


@pytest.mark.parametrize(
    ("ident", "kind"),
    [({}, "an object"), ([], "an array"), (True, "a boolean"), (2.5, "a fraction"), (None, "null")],
)
def test_ids_of_other_types_are_named(ident: object, kind: str) -> None:
    """Each refused id type is named in the message."""
    body = json.dumps({"jsonrpc": "2.0", "id": ident, "method": "ping"}).encode()
    assert id_problem(body) == f"Invalid Request: id must be a string or an integer, not {kind}"


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "2.0", "id": "a", "method": "ping"}',
        b'{"jsonrpc": "2.0", "id": 7, "method": "ping"}',
        b'{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        b'[{"jsonrpc": "2.0", "id": {}, "method": "ping"}]',
        b"{not json",
        b"",
    ],
)
def test_valid_ids_notifications_and_what_the_sdk_reports_pass(body: bytes) -> None:
    """String and integer ids, notifications, batches and unparsable bodies are left to the SDK."""
    assert id_problem(body) is None


def test_error_body_is_a_jsonrpc_error_with_a_null_id() -> None:
    """The refusal body is a JSON-RPC 2.0 error object with id null."""
    assert json.loads(error_body(-32600, "no")) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "no"},
    }
