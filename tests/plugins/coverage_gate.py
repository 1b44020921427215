"""The coverage floor of the secrets package (the story's "secrets client"): a run of the
whole suite fails when `kb_mcp/secrets` is below `SECRETS_FLOOR_PERCENT` line coverage.

pytest-cov measures the whole `kb_mcp` package (configured in pyproject.toml) and prints
its report; this plugin adds the package's own report and floor after it. Only a run of
the whole suite (pytest's `testpaths`, no `-k`/`-m`/`--lf` selection) is held to the floor:
a targeted run covers only what it targets. Loaded with `-p tests.plugins.coverage_gate`.
"""

from __future__ import annotations

import io
from collections.abc import Generator
from pathlib import Path

import pytest

SECRETS_FLOOR_PERCENT = 90.0
SECRETS_PACKAGE = Path(__file__).resolve().parents[2] / "kb_mcp" / "secrets"


def _whole_suite(config: pytest.Config) -> bool:
    option = config.option
    return (
        config.args_source is pytest.Config.ArgsSource.TESTPATHS
        and not option.keyword
        and not option.markexpr
        and not getattr(option, "lf", False)
        and not getattr(option, "deselect", None)
        and not option.collectonly
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    # tryfirst: this wrapper is outside pytest-cov's, so its data is saved when we read it.
    result = yield
    plugin = session.config.pluginmanager.getplugin("_cov")
    controller = getattr(plugin, "cov_controller", None)
    if controller is None or not _whole_suite(session.config):
        return result
    report = io.StringIO()
    percent = float(
        controller.cov.report(
            include=[f"{SECRETS_PACKAGE}/*"], file=report, show_missing=True, precision=1
        )
    )
    terminal = session.config.pluginmanager.getplugin("terminalreporter")
    terminal.write_sep("-", f"coverage of kb_mcp/secrets (floor {SECRETS_FLOOR_PERCENT:.0f}%)")
    terminal.write(report.getvalue())
    if percent < SECRETS_FLOOR_PERCENT:
        terminal.write_line(
            f"coverage failure: kb_mcp/secrets at {percent:.1f}% is below "
            f"{SECRETS_FLOOR_PERCENT:.0f}%",
            red=True,
            bold=True,
        )
        session.testsfailed += 1
    return result
