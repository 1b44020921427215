"""`kb-mcp secrets rotate {postgres,openai}`: rotate a secret with the four AWS steps.

    kb-mcp secrets rotate postgres [--env E] [--secret NAME] [--master-secret NAME]
                                   [--dry-run] [--stop-after STEP] [--json]
    kb-mcp secrets rotate openai   [--env E] [--secret NAME]
                                   (--new-value-from-env VAR | --generate | key on stdin)
                                   [--dry-run] [--stop-after STEP] [--json]
    kb-mcp secrets rotate {postgres,openai} --rollback [--env E] [--secret NAME] [--dry-run]

A rerun resumes an interrupted rotation with the same pending VersionId. The exit code is
1 when a step fails (AWSCURRENT moves only in the last step), 2 on bad usage. The steps
are in `rotate_steps`; the library functions are `rotate_postgres` and `rotate_openai`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys

from pydantic import SecretStr

from kb_mcp.config import Settings
from kb_mcp.errors import EXIT_OK, EXIT_STARTUP_FAILURE, EXIT_USAGE, KbMcpError
from kb_mcp.ops.aws import ENV_CHOICES, cli_settings, setup_cli_logging
from kb_mcp.ops.rotation.openai_key import rollback_openai, rotate_openai
from kb_mcp.ops.rotation.postgres import rollback_postgres, rotate_postgres
from kb_mcp.ops.rotation.steps import RotationResult

__all__ = [
    "RotationResult",
    "register",
    "rollback_openai",
    "rollback_postgres",
    "rotate_openai",
    "rotate_postgres",
]


def _check_target_options(args: argparse.Namespace) -> None:
    if args.rollback and (args.generate or args.new_value_from_env or args.stop_after):
        raise ValueError("--rollback takes no new value and runs in one go")
    if args.target == "postgres" and (args.generate or args.new_value_from_env):
        raise ValueError(
            "postgres passwords are generated; --generate and --new-value-from-env are for openai"
        )


def _read_new_key(args: argparse.Namespace) -> SecretStr | None:
    """The operator's new OpenAI key: from an environment variable, or stdin; never argv."""
    if args.generate:
        return None
    if args.new_value_from_env:
        value = os.environ.get(args.new_value_from_env, "").strip()
        if not value:
            raise ValueError(f"environment variable {args.new_value_from_env} is empty or unset")
        return SecretStr(value)
    if args.dry_run:
        return None
    if sys.stdin.isatty():
        value = getpass.getpass("new OpenAI API key (input hidden): ").strip()
    else:
        value = sys.stdin.readline().strip()
    if not value:
        raise ValueError("no new key given: use --new-value-from-env VAR, stdin, or --generate")
    return SecretStr(value)


def _print_result(result: RotationResult, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    if result.dry_run:
        state = "dry run, nothing changed"
    elif result.completed:
        state = "complete"
    else:
        state = "stopped after " + (result.steps_done[-1] if result.steps_done else "start")
    lines = [
        f"{result.action} of {result.secret_name}: {state}",
        f"  from version: {result.old_version_id}",
        f"  to version:   {result.new_version_id}",
        *(f"  {detail}" for detail in result.details),
    ]
    sys.stdout.write("\n".join(lines) + "\n")


async def _rotate(
    args: argparse.Namespace, settings: Settings, new_key: SecretStr | None
) -> RotationResult:
    if args.rollback:
        rollback = rollback_postgres if args.target == "postgres" else rollback_openai
        return await rollback(settings, secret_name=args.secret, dry_run=args.dry_run)
    if args.target == "postgres":
        return await rotate_postgres(
            settings,
            secret_name=args.secret,
            master_secret=args.master_secret,
            dry_run=args.dry_run,
            stop_after=args.stop_after,
        )
    return await rotate_openai(
        settings,
        secret_name=args.secret,
        new_key=new_key,
        generate=args.generate,
        dry_run=args.dry_run,
        stop_after=args.stop_after,
    )


def _run(args: argparse.Namespace) -> int:
    try:
        settings = cli_settings(args.env, local_stack="secrets rotate")
        _check_target_options(args)
        wants_key = args.target == "openai" and not args.rollback
        new_key = _read_new_key(args) if wants_key else None
    except KbMcpError:
        raise
    except ValueError as exc:
        sys.stderr.write(f"kb-mcp secrets rotate: error: {exc}\n")
        return EXIT_USAGE
    setup_cli_logging(settings)
    try:
        result = asyncio.run(_rotate(args, settings, new_key))
    except KbMcpError as exc:
        sys.stderr.write(f"kb-mcp secrets rotate: rotation failed: {exc}\n")
        if exc.hint:
            sys.stderr.write(f"kb-mcp secrets rotate: check: {exc.hint}\n")
        sys.stderr.write(
            "kb-mcp secrets rotate: AWSCURRENT moves only in the last step; "
            "rerun the same command to resume once fixed\n"
        )
        return EXIT_STARTUP_FAILURE
    _print_result(result, as_json=args.json)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rotate {postgres,openai}`."""
    parser = subparsers.add_parser(
        "rotate",
        help="rotate a secret (create, set, test, finish; resumable)",
        description=(
            "Rotate the PostgreSQL credentials (two alternating login roles) or the OpenAI "
            "API key with the four steps of AWS rotation. A rerun resumes an interrupted "
            "rotation. See secrets/RUNBOOK.md."
        ),
    )
    parser.add_argument("target", choices=("postgres", "openai"), help="which secret")
    parser.add_argument("--env", choices=ENV_CHOICES, help="deployment (default: KB_MCP_ENV)")
    parser.add_argument("--secret", help="secret name (default: kb-mcp/{env}/... for the target)")
    parser.add_argument(
        "--master-secret",
        help="postgres: secret with CREATEROLE credentials (default kb-mcp/{env}/postgres-master)",
    )
    parser.add_argument(
        "--new-value-from-env",
        metavar="VAR",
        help="openai: read the new key from this environment variable (else stdin)",
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="openai: generate a fake-format key (local stack and tests only)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--rollback",
        action="store_true",
        help="move AWSCURRENT back to AWSPREVIOUS (after testing that the previous value works)",
    )
    parser.add_argument(
        "--stop-after",
        choices=("create", "set", "test"),
        help="stop after this step (a rerun resumes); for drills",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=_run)
