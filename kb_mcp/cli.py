"""The `kb-mcp` command line.

    kb-mcp serve [--transport stdio|http] [--host H] [--port P] [--allow-unauthenticated]
    kb-mcp dev [--data-dir D] [--port P] [--rotate-every S]
    kb-mcp secrets {verify,seed,rotate,age,audit,policy} ...
    kb-mcp drill [...]

Exit codes: 0 clean stop, 1 startup failure, 2 bad usage (`kb_mcp.errors`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kb_mcp import __version__
from kb_mcp.errors import EXIT_STARTUP_FAILURE, KbMcpError

__all__ = ["build_parser", "main", "report_startup_failure"]

Handler = Callable[[argparse.Namespace], int]

# Modules that add a `kb-mcp secrets <name>` sub-command through `register(subparsers)`.
SECRETS_COMMANDS = (
    "kb_mcp.ops.verify",
    "kb_mcp.ops.seed",
    "kb_mcp.ops.rotate",
    "kb_mcp.ops.age",
    "kb_mcp.ops.audit",
    "kb_mcp.ops.policy",
)
# Modules that add a top-level command.
TOP_COMMANDS = ("kb_mcp.devstack.cli", "kb_mcp.ops.drill")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage, which is our contract too; keep messages short."""


def report_startup_failure(exc: KbMcpError) -> None:
    """A short human line (and what to check) on stderr; the structured event is logged."""
    sys.stderr.write(f"kb-mcp: startup failed: {exc}\n")
    if exc.hint:
        sys.stderr.write(f"kb-mcp: check: {exc.hint}\n")
    sys.stderr.flush()


def _serve(args: argparse.Namespace) -> int:
    from kb_mcp.runtime.serve import run_serve

    return run_serve(
        transport=args.transport,
        host=args.host,
        port=args.port,
        allow_unauthenticated=args.allow_unauthenticated,
    )


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every sub-command registered."""
    parser = _Parser(prog="kb-mcp", description="Knowledge-base MCP server (secrets from AWS).")
    parser.add_argument("--version", action="version", version=f"kb-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the MCP server")
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="bind address for http")
    serve.add_argument("--port", type=int, default=8080, help="port for http (0 = any free)")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve http on a non-loopback address without a bearer-token secret",
    )
    serve.set_defaults(handler=_serve)

    secrets_cmd = commands.add_parser("secrets", help="secrets operations")
    secrets_sub = secrets_cmd.add_subparsers(dest="secrets_command", required=True, metavar="OP")
    for module_name in SECRETS_COMMANDS:
        importlib.import_module(module_name).register(secrets_sub)
    for module_name in TOP_COMMANDS:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KbMcpError as exc:
        report_startup_failure(exc)
        return EXIT_STARTUP_FAILURE
    except KeyboardInterrupt:
        return 130


def run_async(coro_fn: Callable[..., Any], *args: Any) -> Any:
    """Run a coroutine function to completion (helper for sub-command handlers)."""
    return asyncio.run(coro_fn(*args))


