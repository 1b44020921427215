"""Suite-wide fixtures: log capture with a secret-leak guard, and the real-server plugins.

Hypothesis runs derandomized (the same examples every run, no example database), so a
run's verdict depends on the code alone; `HYPOTHESIS_PROFILE=explore` draws new examples
each run, for looking for bugs rather than landing a change.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.redaction import secret_registry
from tests.support.fakes import WATCHED
from tests.support.leaks import iter_leaks

pytest_plugins = ["tests.plugins.servers", "tests.plugins.knowledge"]

hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


class CapturedLogs:
    """Every log event of one test, as event dicts (after redaction), and as rendered lines
    (exactly as they would be written: the leak guard and rendering tests read those)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []

    def append(self, line: str) -> None:
        self.lines.append(line)

    def record(self, event: dict[str, Any]) -> None:
        self.records.append(event)

    def text(self) -> str:
        return "\n".join(self.lines)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The event dicts whose event is `name`, in order."""
        return [r for r in self.records if r.get("event") == name]

    def lines_of(self, name: str) -> list[str]:
        """Rendered lines of the events named `name` (tests of rendering and masking)."""
        needle = f'"event": "{name}"'
        return [line for line in self.lines if needle in line]

    def configure(self) -> None:
        """Route logging to this capture (JSON lines, DEBUG)."""
        configure_logging(
            json_lines=True,
            level="DEBUG",
            sink=self.append,
            event_sink=self.record,
            stream=sys.stderr,
        )


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[CapturedLogs]:
    """Capture every log line; fail the test if any secret value appears in one."""
    captured = CapturedLogs()
    captured.configure()
    yield captured
    values = set(WATCHED) | set(secret_registry().values())
    leaked = iter_leaks(captured.text(), values)
    # Only a count and lengths are reported: printing the leaked value would leak it again.
    assert not leaked, (
        f"{len(leaked)} secret value(s) appeared in captured log lines "
        f"(lengths {sorted(len(v) for v in leaked)})"
    )
    logging.getLogger().setLevel(logging.WARNING)
