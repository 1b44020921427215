"""`kb-mcp secrets audit`: its arguments and handler.

The scanner needs `detect-secrets` (in the `local` extra). This module does not import it,
so `--help` always works and a missing package is one line naming what to install. The
audit writes no file unless `--report PATH` is given: a check must not dirty the checkout
it checks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import structlog

from kb_mcp.errors import EXIT_STARTUP_FAILURE, EXIT_USAGE, ConfigError
from kb_mcp.observability.logging import configure_logging

__all__ = ["MISSING_SCANNER", "register"]

DEFAULT_HISTORY_DEPTH = 100
MISSING_SCANNER = (
    "kb-mcp: secrets audit needs detect-secrets: pip install 'kb-mcp[local]' "
    "(or pip install detect-secrets)\n"
)

_DESCRIPTION = (
    "Scan the working tree (git's view of it, plus every .env* file even when ignored) and "
    "the last N commits' added lines for secrets, check that .env* files hold no sensitive "
    "value and that .env is git-ignored, apply the allowlist (.secrets-allowlist.json) and "
    "exit 1 on any finding. A finding shows at most four characters of a value and a sha256 "
    "fingerprint prefix, never the value. Nothing is written unless --report is given."
)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("must be an integer") from exc
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `audit` (handler: `handle_audit`) to `kb-mcp secrets`."""
    parser = subparsers.add_parser(
        "audit",
        help="scan the tree and git history for secrets; check the .env policy",
        description=_DESCRIPTION,
    )
    parser.add_argument("--root", type=Path, help="repository to audit (default: git top level)")
    parser.add_argument(
        "--history-depth", type=_non_negative, default=DEFAULT_HISTORY_DEPTH,
        help="commits of history to scan (0 disables; default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--files", nargs="*", type=Path, metavar="FILE",
        help="scan only these files, no history (the pre-commit hook)",
    )  # fmt: skip
    parser.add_argument(
        "--allowlist", type=Path, help="allowlist file (default: .secrets-allowlist.json)"
    )
    parser.add_argument(
        "--report", type=Path, metavar="PATH",
        help="also write a Markdown report to PATH (default: no file is written)",
    )  # fmt: skip
    parser.add_argument(
        "--no-report", action="store_true", help="accepted for compatibility: the default"
    )
    parser.add_argument("--json", action="store_true", help="print the result as json")
    parser.set_defaults(handler=handle_audit)


def handle_audit(args: argparse.Namespace) -> int:
    """Run the audit from parsed arguments; 0 clean, 1 findings, 2 bad allowlist."""
    try:
        from kb_mcp.ops.audit.history import git_root
        from kb_mcp.ops.audit.report import render_markdown, render_summary
        from kb_mcp.ops.audit.scan import run_audit
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("detect_secrets"):
            raise
        sys.stderr.write(MISSING_SCANNER)
        return EXIT_STARTUP_FAILURE
    if not structlog.is_configured():  # stdout carries the summary or --json: logs to stderr
        configure_logging(json_lines=False, level="WARNING")
    root: Path = args.root or git_root(Path.cwd()) or Path.cwd()
    try:
        result = run_audit(
            root, history_depth=args.history_depth, files=args.files, allowlist=args.allowlist
        )
    except ConfigError as exc:
        sys.stderr.write(f"kb-mcp: {exc}\n")
        return EXIT_USAGE
    report: Path | None = args.report
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render_markdown(result), encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_summary(result, report))
    return result.exit_code
