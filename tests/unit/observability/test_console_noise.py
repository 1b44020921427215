"""The development console carries our events, not the SDK's per-request chatter."""

from __future__ import annotations

import io
import logging

import structlog

from kb_mcp.observability.logging import configure_logging


def _console() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(json_lines=False, level="INFO", stream=stream)
    return stream


def test_stateless_http_session_lines_are_not_on_the_console() -> None:
    """`Terminating session: None` (once per HTTP request at INFO) is dropped."""
    stream = _console()
    logging.getLogger("mcp.server.streamable_http").info("Terminating session: %s", None)
    structlog.get_logger("kb_mcp.test").info("tool.rejected", tool="kb_get")
    text = stream.getvalue()
    assert "Terminating session" not in text
    assert "tool.rejected" in text


def test_a_tool_failure_is_one_line_ours() -> None:
    """The SDK's `Tool 'x' failed` repeat of our `tool.rejected` is dropped; its argument
    rejections (which no tool of ours saw) stay."""
    stream = _console()
    sdk = logging.getLogger("mcp.server.mcpserver.server")
    sdk.info("Tool %r failed: %r", "kb_get", "no document has id 1")
    sdk.info("Tool %r rejected arguments: %r", "kb_get", ["id"])
    text = stream.getvalue()
    assert "failed" not in text
    assert "rejected arguments" in text
    assert len(text.strip().splitlines()) == 1
