"""`kb-mcp import PATH...` and `kb-mcp export`: the bulk commands over a running knowledge base.

Both reach the database and the embeddings endpoint exactly as `kb-mcp serve` does: the
settings from the environment (or a running `kb-mcp dev`'s, `kb_mcp.ops.local_stack`),
the secrets from Secrets Manager, the runtime booted with its migrations, and the same
wiring of the document store (`kb_mcp.runtime.wiring.build_context`). A boot failure is
reported like the server's, exit 1. Neither imports the MCP SDK, Starlette or uvicorn,
and rich only for a progress bar on a terminal: most of a short command's time was
imports (`docs/PERFORMANCE.md`).

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
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from kb_mcp.config import Settings
from kb_mcp.errors import EXIT_OK, EXIT_STARTUP_FAILURE, EXIT_USAGE
from kb_mcp.ops.aws import ENV_CHOICES, cli_settings, setup_cli_logging
from kb_mcp.ops.bulk.sources import read_sources
from kb_mcp.runtime.collector import collector_paused

if TYPE_CHECKING:
    from kb_mcp.ops.bulk.importer import ImportSummary
    from kb_mcp.server.context import AppContext

__all__ = ["knowledge_base", "register_export", "register_import"]

_SHOWN_FAILURES = 20


@asynccontextmanager
async def knowledge_base(
    settings: Settings, *, on_ready: Callable[[], None] | None = None
) -> AsyncIterator[AppContext]:
    """The runtime `kb-mcp serve` boots (secrets, pool, migrations), as the tools' context.

    Only the context: no MCP server, no HTTP app (nor their imports), no refresher loop (a
    command this short outlives no rotation; a 401 or a refused login still makes the
    runtime re-read the secret once, as in the server). `on_ready` is called once booted.
    """
    from kb_mcp.db.vectors import init_connection
    from kb_mcp.runtime.serve import boot_migrations
    from kb_mcp.runtime.supervisor import boot_runtime
    from kb_mcp.runtime.wiring import build_context

    async with boot_runtime(
        settings,
        pool_init=init_connection,
        on_pool_ready=boot_migrations(settings.embedding_dimensions),
    ) as runtime:
        context = build_context(runtime)
        if on_ready is not None:
            on_ready()
        yield context


@contextmanager
def _progress(total: int, shown: bool) -> Iterator[Callable[[str], None]]:
    """What to call after each record: a bar's advance on a terminal (rich, imported only
    then), else nothing."""
    if not shown:
        yield lambda _status: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task("importing", total=total)
        yield lambda _status: progress.advance(task)


def _settings(args: argparse.Namespace, command: str) -> Settings | None:
    try:
        settings = cli_settings(args.env, local_stack=command)
    except ValueError as exc:
        sys.stderr.write(f"kb-mcp {command}: error: {exc}\n")
        return None
    setup_cli_logging(settings)
    return settings


async def _import(
    args: argparse.Namespace, settings: Settings, on_ready: Callable[[], None]
) -> tuple[ImportSummary, float]:
    """The summary, and the seconds the import took once the runtime was up."""
    from kb_mcp.ops.bulk.importer import import_records

    records, skipped = read_sources([Path(p) for p in args.paths])
    if skipped:
        sys.stderr.write(f"kb-mcp import: {skipped} files skipped (not .md, .txt or .jsonl)\n")
    shown = not args.no_progress and sys.stderr.isatty()
    async with knowledge_base(settings, on_ready=on_ready) as app:
        started = time.monotonic()
        with _progress(len(records), shown) as advance:
            summary = await import_records(
                app,
                records,
                namespace=args.namespace,
                concurrency=args.concurrency,
                on_done=advance,
            )
        return summary, time.monotonic() - started


def _run_import(args: argparse.Namespace) -> int:
    # The collector stays off from the first heavy import until the runtime is up, as
    # for `kb-mcp serve` (`kb_mcp.runtime.collector`).
    with collector_paused() as resume:
        settings = _settings(args, "import")
        if settings is None:
            return EXIT_USAGE
        summary, elapsed = asyncio.run(_import(args, settings, resume))
    for origin, reason in summary.failures[:_SHOWN_FAILURES]:
        sys.stderr.write(f"failed  {origin}: {reason}\n")
    if len(summary.failures) > _SHOWN_FAILURES:
        sys.stderr.write(f"... and {len(summary.failures) - _SHOWN_FAILURES} more failed\n")
    rate = summary.total / elapsed if elapsed > 0 else 0.0
    sys.stdout.write(
        f"imported {summary.total} records in {elapsed:.2f} s ({rate:.1f}/s): {summary.line()}\n"
    )
    return EXIT_STARTUP_FAILURE if summary.failures else EXIT_OK


async def _export(
    settings: Settings, out: TextIO, namespace: str | None, on_ready: Callable[[], None]
) -> int:
    from kb_mcp.ops.bulk.importer import export_records

    async with knowledge_base(settings, on_ready=on_ready) as app:
        return await export_records(app, out, namespace=namespace)


def _run_export(args: argparse.Namespace) -> int:
    with collector_paused() as resume:
        settings = _settings(args, "export")
        if settings is None:
            return EXIT_USAGE
        if args.output is None:
            written = asyncio.run(_export(settings, sys.stdout, args.namespace, resume))
        else:
            with open(args.output, "w", encoding="utf-8") as out:
                written = asyncio.run(_export(settings, out, args.namespace, resume))
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
