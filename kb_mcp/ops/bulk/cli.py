"""`kb-mcp import PATH...` and `kb-mcp export`: the bulk commands over a running knowledge base.

Both reach the database and the embeddings endpoint exactly as `kb-mcp serve` does: the
settings from the environment (or a running `kb-mcp dev`'s, `kb_mcp.ops.local_stack`),
the secrets from Secrets Manager, the runtime booted with its migrations, and the same
wiring of the document store (`kb_mcp.runtime.app.build_app`). A boot failure is reported
like the server's, exit 1.

    kb-mcp import PATH... [--namespace NS] [--concurrency N] [--no-progress]
    kb-mcp export [--namespace NS] [--output FILE]

import exits 0 when every record was stored or skipped, 1 when any failed (each named
on stderr, with why); running it again resumes (stored records are skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TextIO

from kb_mcp.config import Settings
from kb_mcp.errors import EXIT_OK, EXIT_STARTUP_FAILURE, EXIT_USAGE
from kb_mcp.ops.aws import ENV_CHOICES, cli_settings, setup_cli_logging
from kb_mcp.ops.bulk.importer import ImportSummary, export_records, import_records
from kb_mcp.ops.bulk.sources import read_sources
from kb_mcp.server.context import AppContext

__all__ = ["knowledge_base", "register_export", "register_import"]

_SHOWN_FAILURES = 20


@asynccontextmanager
async def knowledge_base(settings: Settings) -> AsyncIterator[AppContext]:
    """The runtime `kb-mcp serve` boots (secrets, pool, migrations), as an `AppContext`."""
    from kb_mcp.db.vectors import init_connection
    from kb_mcp.runtime.app import build_app
    from kb_mcp.runtime.serve import boot_migrations
    from kb_mcp.runtime.supervisor import boot_runtime

    async with boot_runtime(
        settings,
        pool_init=init_connection,
        on_pool_ready=boot_migrations(settings.embedding_dimensions),
    ) as runtime:
        yield build_app(runtime, host="127.0.0.1").context


def _settings(args: argparse.Namespace, command: str) -> Settings | None:
    try:
        settings = cli_settings(args.env, local_stack=command)
    except ValueError as exc:
        sys.stderr.write(f"kb-mcp {command}: error: {exc}\n")
        return None
    setup_cli_logging(settings)
    return settings


async def _import(args: argparse.Namespace, settings: Settings) -> tuple[ImportSummary, float]:
    """The summary, and the seconds the import took once the runtime was up."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    records, skipped = read_sources([Path(p) for p in args.paths])
    if skipped:
        sys.stderr.write(f"kb-mcp import: {skipped} files skipped (not .md, .txt or .jsonl)\n")
    console = Console(stderr=True)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=args.no_progress or not console.is_terminal,
    )
    async with knowledge_base(settings) as app:
        started = time.monotonic()
        with progress:
            task = progress.add_task("importing", total=len(records))
            summary = await import_records(
                app,
                records,
                namespace=args.namespace,
                concurrency=args.concurrency,
                on_done=lambda _status: progress.advance(task),
            )
        return summary, time.monotonic() - started


def _run_import(args: argparse.Namespace) -> int:
    settings = _settings(args, "import")
    if settings is None:
        return EXIT_USAGE
    summary, elapsed = asyncio.run(_import(args, settings))
    for origin, reason in summary.failures[:_SHOWN_FAILURES]:
        sys.stderr.write(f"failed  {origin}: {reason}\n")
    if len(summary.failures) > _SHOWN_FAILURES:
        sys.stderr.write(f"... and {len(summary.failures) - _SHOWN_FAILURES} more failed\n")
    rate = summary.total / elapsed if elapsed > 0 else 0.0
    sys.stdout.write(
        f"imported {summary.total} records in {elapsed:.2f} s ({rate:.1f}/s): {summary.line()}\n"
    )
    return EXIT_STARTUP_FAILURE if summary.failures else EXIT_OK


async def _export(settings: Settings, out: TextIO, namespace: str | None) -> int:
    async with knowledge_base(settings) as app:
        return await export_records(app, out, namespace=namespace)


def _run_export(args: argparse.Namespace) -> int:
    settings = _settings(args, "export")
    if settings is None:
        return EXIT_USAGE
    if args.output is None:
        written = asyncio.run(_export(settings, sys.stdout, args.namespace))
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            written = asyncio.run(_export(settings, out, args.namespace))
    sys.stderr.write(f"kb-mcp export: {written} documents written\n")
    return EXIT_OK


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", choices=ENV_CHOICES, help="deployment (default: KB_MCP_ENV)")


def register_import(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `import`."""
    parser = subparsers.add_parser(
        "import",
        help="import markdown, text and JSONL files into the knowledge base",
        description=(
            "Import documents: markdown/text files (external_id = path relative to the "
            "directory given), directories of them, JSONL records (kb-mcp export's shape). "
            "Unchanged documents are skipped; run again to resume."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    parser.add_argument(
        "--namespace", default="default", help="namespace of records that name none"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="adds at once (default 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(parser)
    parser.set_defaults(handler=_run_import)


def register_export(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `export`."""
    parser = subparsers.add_parser(
        "export",
        help="write every document as JSONL (kb-mcp import reads it back)",
        description="Write every document (or one namespace's) as one JSON object a line.",
    )
    parser.add_argument("--namespace", help="only this namespace (default: all)")
    parser.add_argument("--output", "-o", help="file to write (default: stdout)")
    _common(parser)
    parser.set_defaults(handler=_run_export)
