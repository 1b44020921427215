"""Suite-wide fixtures: log capture with a secret-leak guard, and the real-server plugins."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.redaction import secret_registry
from tests.support.fakes import WATCHED

pytest_plugins = ["tests.plugins.servers"]


class CapturedLogs:
    """Every rendered log line of one test (after redaction, exactly as it would be written)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def append(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)

    def events(self, name: str) -> list[str]:
        """Lines whose event is `name` (JSON lines)."""
        needle = f'"event": "{name}"'
        return [line for line in self.lines if needle in line]


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[CapturedLogs]:
    """Capture every log line; fail the test if any secret value appears in one."""
    captured = CapturedLogs()
    configure_logging(json_lines=True, level="DEBUG", sink=captured.append, stream=sys.stderr)
    yield captured
    values = set(WATCHED) | set(secret_registry().values())
    leaked = [v for v in values if any(v in line for line in captured.lines)]
    # Only a count and lengths are reported: printing the leaked value would leak it again.
    assert not leaked, (
        f"{len(leaked)} secret value(s) appeared in captured log lines "
        f"(lengths {sorted(len(v) for v in leaked)})"
    )
    logging.getLogger().setLevel(logging.WARNING)
