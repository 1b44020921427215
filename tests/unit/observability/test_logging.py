"""Logging setup: JSON lines in production, console in development, one handler, stderr."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
import structlog

from kb_mcp.config import load_settings
from kb_mcp.observability.logging import RedactingHandler, configure_logging
from kb_mcp.observability.redaction import SecretValueRegistry, secret_registry
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_password

log = structlog.get_logger(__name__)
Configure = Callable[..., list[str]]


@pytest.fixture
def configure(captured_logs: CapturedLogs) -> Iterator[Configure]:
    """Reconfigure logging for a test; every line still reaches the suite's leak guard."""

    def apply(**kwargs: object) -> list[str]:
        lines: list[str] = []

        def sink(line: str) -> None:
            lines.append(line)
            captured_logs.append(line)

        configure_logging(sink=sink, **kwargs)  # type: ignore[arg-type]
        return lines

    yield apply
    captured_logs.configure()


def test_json_lines_in_production(configure: Configure) -> None:
    """Production settings give one JSON object per line with event, level, logger, time."""
    lines = configure(json_lines=load_settings(env="production").json_logs)
    log.info("secret.loaded", secret="kb-mcp/prod/openai-api-key", version_id="v1")
    (line,) = lines
    record = json.loads(line)
    assert record["event"] == "secret.loaded"
    assert record["level"] == "info"
    assert record["logger"] == __name__
    assert record["version_id"] == "v1"
    assert record["timestamp"].endswith("Z")


def test_console_in_development(configure: Configure) -> None:
    """Development settings give readable key=value console lines, not JSON."""
    lines = configure(json_lines=load_settings(env="development").json_logs)
    log.warning("secret.loaded", secret="kb-mcp/dev/openai-api-key")
    (line,) = lines
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "secret.loaded" in line
    assert "warning" in line
    assert "secret=kb-mcp/dev/openai-api-key" in line


def test_console_lines_are_redacted_too(configure: Configure) -> None:
    """Console output masks sensitive keys and loaded values just like JSON output."""
    registry = SecretValueRegistry()
    password = fake_password()
    registry.register(password)
    lines = configure(json_lines=False, registry=registry)
    log.info("db.connect", password="not-registered-value", note=f"using {password}")
    try:
        raise ValueError(f"rejected {password}")
    except ValueError:
        log.exception("db.failed")
    text = "\n".join(lines)
    assert password not in text
    assert "not-registered-value" not in text
    assert "rejected ***" in text


def test_level_filters_structlog_and_stdlib(configure: Configure) -> None:
    """Below the configured level nothing is written, from structlog or stdlib loggers."""
    lines = configure(json_lines=True, level="WARNING")
    log.info("quiet.info")
    logging.getLogger("kb_mcp.any").info("quiet stdlib")
    log.warning("loud.warning")
    assert [json.loads(line)["event"] for line in lines] == ["loud.warning"]


def test_noisy_libraries_held_at_warning(configure: Configure) -> None:
    """botocore's debug chatter is not written even at DEBUG."""
    lines = configure(json_lines=True, level="DEBUG")
    logging.getLogger("botocore.endpoint").debug("request dict")
    logging.getLogger("botocore.endpoint").warning("retrying")
    assert [json.loads(line)["event"] for line in lines] == ["retrying"]


def test_reconfiguring_keeps_a_single_handler(configure: Configure) -> None:
    """Configuring twice does not duplicate lines (one redacting handler on the root)."""
    configure(json_lines=True)
    lines = configure(json_lines=True)
    log.info("once")
    assert len(lines) == 1
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, RedactingHandler)]
    assert len(handlers) == 1


def test_stream_output_is_masked(configure: Configure) -> None:
    """A stream handler gets the same masked lines (stderr in production)."""
    registry = SecretValueRegistry()
    password = fake_password()
    registry.register(password)
    stream = io.StringIO()
    configure(json_lines=True, stream=stream, registry=registry)
    logging.getLogger("asyncpg").error("password %s rejected", password)
    written = stream.getvalue()
    assert written.endswith("\n")
    assert password not in written
    assert json.loads(written)["event"] == "password *** rejected"


def test_library_records_become_events_with_their_fields_redacted(
    captured_logs: CapturedLogs,
) -> None:
    """A secretswap stdlib record is an event with its fields, a loaded value masked."""
    value = fake_password()
    secret_registry().register(value)
    logging.getLogger("secretswap.refresher").warning(
        "secret.auth_refresh_failed", extra={"secret": "kb-mcp/test/x", "error": value}
    )
    (event,) = captured_logs.events("secret.auth_refresh_failed")
    assert event["secret"] == "kb-mcp/test/x"
    assert event["logger"] == "secretswap.refresher"
    assert value not in captured_logs.text()
