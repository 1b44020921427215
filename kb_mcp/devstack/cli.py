"""`kb-mcp dev`: the command line of the embedded local stack (see `stack`).

    kb-mcp dev [--data-dir DIR] [--host 127.0.0.1] [--port 8080]
               [--rotate-every SECONDS] [--reset] [--ready-fd FD]

Registering the command imports nothing beyond the standard library: the stack needs
the `local` extra (moto, the PostgreSQL wheel), which a production image does not have.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from kb_mcp.errors import EXIT_STARTUP_FAILURE

__all__ = ["register"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("port must be 0 (any free port) to 65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError("rotation period must be at least 1 second")
    return value


def _run(args: argparse.Namespace) -> int:
    try:
        from kb_mcp.devstack.stack import DevOptions, run_dev
    except ModuleNotFoundError as exc:
        sys.stderr.write(
            f"kb-mcp dev: {exc.name} is not installed; the local stack needs the local "
            "extra: pip install 'kb-mcp[local]'\n"
        )
        return EXIT_STARTUP_FAILURE
    return run_dev(
        DevOptions(
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            rotate_every_s=args.rotate_every,
            reset=args.reset,
            ready_fd=args.ready_fd,
        )
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dev` (the whole stack locally: moto, PostgreSQL, embeddings, the MCP server)."""
    parser = subparsers.add_parser(
        "dev",
        help="run everything locally (secrets, database, embeddings) and serve MCP over http",
        description=(
            "Start a local Secrets Manager (moto), PostgreSQL with pgvector, and an "
            "offline OpenAI-compatible embeddings endpoint, seed the development secrets, "
            "and serve the MCP server at http://HOST:PORT/mcp with the production runtime. "
            "Ctrl-C stops everything it started."
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".kb-mcp"),
        metavar="DIR",
        help="where the database lives between runs (default ./.kb-mcp)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address (default 127.0.0.1; loopback needs no bearer token)",
    )
    parser.add_argument(
        "--port", type=_port, default=8080, help="http port (default 8080; 0 = any free port)"
    )
    parser.add_argument(
        "--rotate-every",
        type=_seconds,
        metavar="SECONDS",
        help="rotate both secrets every SECONDS while serving, to watch hot reloads",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="delete the database in the data folder and start from an empty one",
    )
    parser.add_argument(
        "--ready-fd",
        type=int,
        metavar="FD",
        help="write one JSON line (port, url, data dir) to this inherited descriptor once ready",
    )
    parser.set_defaults(handler=_run)
