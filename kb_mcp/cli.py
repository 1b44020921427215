"""The `kb-mcp` command line.

    kb-mcp serve [--transport stdio|http] [--host H] [--port P] [--allow-unauthenticated]
                 [--ready-fd FD]
    kb-mcp dev [--data-dir D] [--port P] [--rotate-every S]
    kb-mcp secrets {verify,seed,rotate,age,audit,policy} ...
    kb-mcp drill [...]
    kb-mcp import PATH... | kb-mcp export

Exit codes: 0 clean stop, 1 startup failure, 2 bad usage (`kb_mcp.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from kb_mcp import __version__
from kb_mcp.errors import EXIT_STARTUP_FAILURE, KbMcpError, report_startup_failure

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

# Sub-commands and the modules that register them (`register(subparsers)`). A module is
# imported only when its command is the one being run (or for `--help` of its group),
# so `kb-mcp serve` does not pay for the operations tooling's imports.
SECRETS_COMMANDS = {
    "verify": ("kb_mcp.ops.verify", "fetch and validate every secret, log in to PostgreSQL"),
    "seed": ("kb_mcp.ops.seed", "create the development secrets in moto or LocalStack"),
    "rotate": ("kb_mcp.ops.rotation", "rotate a secret (create, set, test, finish; resumable)"),
    "age": ("kb_mcp.ops.age", "flag secrets older than the rotation policy allows"),
    "audit": ("kb_mcp.ops.audit", "scan files and git history for secrets"),
    "policy": ("kb_mcp.ops.policy", "print the least-privilege task-role policy"),
}
TOP_COMMANDS = {
    "dev": ("kb_mcp.devstack.cli", "run the embedded local stack"),
    "drill": ("kb_mcp.ops.drill", "rotate secrets under load and report failed requests"),
    "import": ("kb_mcp.ops.bulk.import_command", "import markdown, text and JSONL files"),
    "export": ("kb_mcp.ops.bulk.export_command", "write every document as JSONL"),
}


def _positionals(argv: Sequence[str]) -> list[str]:
    return [arg for arg in argv if not arg.startswith("-")][:2]


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage, which is our contract too; keep messages short."""


def _serve(args: argparse.Namespace) -> int:
    from kb_mcp.runtime.collector import collector_paused

    # The collector stays off from the first heavy import until the server is ready.
    with collector_paused() as resume:
        from kb_mcp.runtime.serve import run_serve

        return run_serve(
            transport=args.transport,
            host=args.host,
            port=args.port,
            allow_unauthenticated=args.allow_unauthenticated,
            ready_fd=args.ready_fd,
            on_ready=resume,
        )


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; the sub-command `argv` selects is fully registered, others by name."""
    parser = _Parser(prog="kb-mcp", description="Knowledge-base MCP server (secrets from AWS).")
    parser.add_argument("--version", action="version", version=f"kb-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the MCP server",
        description="Run the MCP server: secrets from AWS Secrets Manager, hot-reloaded.",
    )
    serve.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio: MCP over stdin/stdout, for a client that starts the server (default); "
        "http: streamable HTTP on --host/--port at /mcp, with /healthz and /readyz",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address for http")
    serve.add_argument("--port", type=int, default=8080, help="port for http (0 = any free)")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve http on a non-loopback address without a bearer-token secret",
    )
    serve.add_argument(
        "--ready-fd",
        type=int,
        metavar="FD",
        help="write one JSON line (port, url) to this inherited file descriptor once ready",
    )
    serve.set_defaults(handler=_serve)

    words = _positionals(argv)
    secrets_cmd = commands.add_parser("secrets", help="secrets operations")
    secrets_sub = secrets_cmd.add_subparsers(dest="secrets_command", required=True, metavar="OP")
    wanted_op = words[1] if words[:1] == ["secrets"] and len(words) > 1 else None
    for name, (module_name, help_text) in SECRETS_COMMANDS.items():
        if wanted_op == name:
            importlib.import_module(module_name).register(secrets_sub)
        else:
            secrets_sub.add_parser(name, help=help_text)
    for name, (module_name, help_text) in TOP_COMMANDS.items():
        if words[:1] == [name]:
            importlib.import_module(module_name).register(commands)
        else:
            commands.add_parser(name, help=help_text)
    return parser


def _what(args: argparse.Namespace) -> str:
    """What a failure stopped: the server's startup (`serve`, `dev`), or the command."""
    if args.command in {"serve", "dev"}:
        return "startup"
    if args.command == "secrets":
        return f"secrets {args.secrets_command}"
    return str(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KbMcpError as exc:
        report_startup_failure(exc, what=_what(args))
        return EXIT_STARTUP_FAILURE
    except KeyboardInterrupt:
        return 130
