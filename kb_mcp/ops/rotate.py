"""`kb-mcp secrets rotate {postgres,openai}`: the four steps of AWS rotation, resumable.

The steps are the ones a Secrets Manager rotation Lambda runs, driven from the command
line (or the drill) instead of a Lambda:

1. create: put the new value as `AWSPENDING` (`PutSecretValue` with a client request
   token, which becomes the VersionId). A pending version left by an interrupted run is
   reused when it still fits the current one, so a rerun resumes with the same VersionId.
2. set: make the pending value valid where it is used (PostgreSQL: create or re-password
   the other login role; OpenAI: the key was created in the console, or a local endpoint
   is told to accept it).
3. test: log in with the pending value (`SELECT 1`; `GET /v1/models`). A failure stops
   here with `AWSCURRENT` untouched.
4. finish: `UpdateSecretVersionStage` moves `AWSCURRENT` to the pending version; the old
   one becomes `AWSPREVIOUS` (made explicit when the backend does not), and `AWSPENDING`
   is removed from the finished version.

Every read names its version stage (moto serves a stale value to a stage-less read after
`UpdateSecretVersionStage`). Values are registered with the log redactor as soon as they
are read or generated, and never printed: reports name secrets, versions and users.

The strategies live in `rotate_postgres` and `rotate_openai`; this module holds the step
engine and the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import structlog
from pydantic import SecretStr

from kb_mcp.config import Settings
from kb_mcp.errors import (
    EXIT_OK,
    EXIT_STARTUP_FAILURE,
    EXIT_USAGE,
    KbMcpError,
    RotationError,
    SecretNotFoundError,
)
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.aws import (
    ENV_CHOICES,
    aws_error,
    cli_settings,
    setup_cli_logging,
    stage_owner,
    version_stages,
)
from kb_mcp.secrets.port import AWSCURRENT, AWSPENDING, AWSPREVIOUS

__all__ = [
    "STEPS",
    "RotationResult",
    "RotationStrategy",
    "StopAfter",
    "read_version",
    "register",
    "run_rotation",
]

log = structlog.get_logger(__name__)

Step = Literal["create", "set", "test", "finish"]
StopAfter = Literal["create", "set", "test"]
STEPS: tuple[Step, ...] = ("create", "set", "test", "finish")


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What a rotation run did; names and version ids only, never a value."""

    secret_name: str
    old_version_id: str
    new_version_id: str
    steps_done: tuple[str, ...]
    completed: bool
    dry_run: bool = False
    resumed: bool = False
    details: tuple[str, ...] = ()
    """One line per step, describing it without values ("would" lines in a dry run)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps_done"] = list(self.steps_done)
        data["details"] = list(self.details)
        return data


class RotationStrategy(Protocol):
    """What differs between secrets: how to make, apply and test a new value."""

    kind: str

    def reuse_pending(self, pending: str, current: str) -> bool:
        """True when a pending value left by an earlier run is the one to finish."""
        ...

    async def new_value(self, current: str) -> str:
        """A new value derived from the current one (the same shape)."""
        ...

    def describe(self, value: str) -> str:
        """A description of a value without the value ("user app_clone")."""
        ...

    async def plan(self, current: str, pending: str | None) -> list[str]:
        """What set and test would do (dry run); may read, never change."""
        ...

    async def set_secret(self, pending: str, current: str) -> str:
        """Make `pending` valid where it is used; idempotent. Raises `RotationError`."""
        ...

    async def test_secret(self, pending: str) -> str:
        """Prove `pending` works. Raises `RotationError`."""
        ...


async def read_version(
    client: Any, settings: Settings, name: str, stage: str, version_id: str | None = None
) -> tuple[str, str]:
    """(VersionId, value) of `name` at `stage` (and `version_id` when given).

    The value is registered with the log redactor before it is returned.
    """
    kwargs: dict[str, Any] = {"SecretId": name, "VersionStage": stage}
    if version_id is not None:
        kwargs["VersionId"] = version_id
    try:
        response = await client.get_secret_value(**kwargs)
    except Exception as exc:
        raise aws_error(exc, secret_name=name, settings=settings) from exc
    value = response.get("SecretString")
    if value is None:
        raise SecretNotFoundError(
            f"secret {name} has no string value at stage {stage}",
            secret_name=name,
            region=settings.aws_region,
            aws_error="MalformedSecret",
            hint="store the value as SecretString (text or JSON)",
        )
    secret_registry().register_secret_string(value)
    return str(response["VersionId"]), str(value)


class _Rotation:
    """One rotation run of one secret."""

    def __init__(
        self, client: Any, settings: Settings, name: str, strategy: RotationStrategy
    ) -> None:
        self.client = client
        self.settings = settings
        self.name = name
        self.strategy = strategy
        self.done: list[str] = []
        self.details: list[str] = []

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self.client, method)(SecretId=self.name, **kwargs)
        except Exception as exc:
            raise aws_error(exc, secret_name=self.name, settings=self.settings) from exc

    async def _stages(self) -> dict[str, list[str]]:
        return version_stages(await self._call("describe_secret"))

    def _step(self, step: str, status: str, old: str, new: str, detail: str) -> None:
        self.details.append(f"{step}: {detail}")
        if status in {"done", "reused"}:
            self.done.append(step)
        log.info(
            "rotation.step",
            step=step,
            status=status,
            secret=self.name,
            kind=self.strategy.kind,
            old_version_id=old,
            new_version_id=new,
            detail=detail,
        )

    def _result(
        self, old: str, new: str, *, completed: bool, dry: bool, resumed: bool
    ) -> RotationResult:
        return RotationResult(
            secret_name=self.name,
            old_version_id=old,
            new_version_id=new,
            steps_done=tuple(self.done),
            completed=completed,
            dry_run=dry,
            resumed=resumed,
            details=tuple(self.details),
        )

    async def run(self, *, dry_run: bool, stop_after: StopAfter | None) -> RotationResult:
        stages = await self._stages()
        current_id = stage_owner(stages, AWSCURRENT)
        if current_id is None:
            raise SecretNotFoundError(
                f"secret {self.name} has no AWSCURRENT version",
                secret_name=self.name,
                region=self.settings.aws_region,
                aws_error="ResourceNotFoundException",
                hint="seed the secret first (kb-mcp secrets seed) or restore a version",
            )
        _, current = await read_version(self.client, self.settings, self.name, AWSCURRENT)
        pending_id = stage_owner(stages, AWSPENDING)
        if pending_id == current_id:
            # An earlier run moved AWSCURRENT but stopped before clearing AWSPENDING.
            old_id = stage_owner(stages, AWSPREVIOUS) or ""
            if not dry_run:
                await self._call(
                    "update_secret_version_stage",
                    VersionStage=AWSPENDING,
                    RemoveFromVersionId=current_id,
                )
            self._step(
                "finish",
                "would" if dry_run else "done",
                old_id,
                current_id,
                "AWSCURRENT already moved; cleared AWSPENDING",
            )
            return self._result(old_id, current_id, completed=True, dry=dry_run, resumed=True)
        pending: str | None = None
        if pending_id is not None:
            _, pending = await read_version(
                self.client, self.settings, self.name, AWSPENDING, pending_id
            )
            if not self.strategy.reuse_pending(pending, current):
                log.info("rotation.pending_replaced", secret=self.name, stale_version_id=pending_id)
                pending_id, pending = None, None
        resumed = pending_id is not None
        if dry_run:
            return await self._dry_run(current_id, current, pending_id, pending)

        # 1. create
        if pending_id is None or pending is None:
            pending_id = str(uuid.uuid4())
            pending = await self.strategy.new_value(current)
            secret_registry().register_secret_string(pending)
            await self._call(
                "put_secret_value",
                ClientRequestToken=pending_id,
                SecretString=pending,
                VersionStages=[AWSPENDING],
            )
            self._step(
                "create",
                "done",
                current_id,
                pending_id,
                f"put {self.strategy.describe(pending)} as AWSPENDING",
            )
        else:
            self._step(
                "create",
                "reused",
                current_id,
                pending_id,
                f"resumed pending version ({self.strategy.describe(pending)})",
            )
        if stop_after == "create":
            return self._result(current_id, pending_id, completed=False, dry=False, resumed=resumed)

        # 2. set, 3. test: failures raise RotationError with AWSCURRENT untouched.
        for step in ("set", "test"):
            try:
                if step == "set":
                    detail = await self.strategy.set_secret(pending, current)
                else:
                    detail = await self.strategy.test_secret(pending)
            except KbMcpError as exc:
                if isinstance(exc, RotationError) and not exc.version_id:
                    exc.version_id = pending_id
                log.error(
                    "rotation.failed",
                    step=step,
                    secret=self.name,
                    current_version_id=current_id,
                    pending_version_id=pending_id,
                    error=type(exc).__name__,
                    detail=str(exc),
                )
                raise
            self._step(step, "done", current_id, pending_id, detail)
            if stop_after == step:
                return self._result(
                    current_id, pending_id, completed=False, dry=False, resumed=resumed
                )

        # 4. finish
        await self._finish(current_id, pending_id)
        return self._result(current_id, pending_id, completed=True, dry=False, resumed=resumed)

    async def _finish(self, current_id: str, pending_id: str) -> None:
        await self._call(
            "update_secret_version_stage",
            VersionStage=AWSCURRENT,
            MoveToVersionId=pending_id,
            RemoveFromVersionId=current_id,
        )
        stages = await self._stages()
        previous_id = stage_owner(stages, AWSPREVIOUS)
        if previous_id != current_id:
            kwargs: dict[str, Any] = {"VersionStage": AWSPREVIOUS, "MoveToVersionId": current_id}
            if previous_id is not None:
                kwargs["RemoveFromVersionId"] = previous_id
            await self._call("update_secret_version_stage", **kwargs)
        if AWSPENDING in stages.get(pending_id, []):
            await self._call(
                "update_secret_version_stage",
                VersionStage=AWSPENDING,
                RemoveFromVersionId=pending_id,
            )
        self._step(
            "finish",
            "done",
            current_id,
            pending_id,
            f"AWSCURRENT moved to {pending_id}; AWSPREVIOUS is {current_id}",
        )

    async def _dry_run(
        self, current_id: str, current: str, pending_id: str | None, pending: str | None
    ) -> RotationResult:
        new_id = pending_id or "(new version id)"
        if pending_id is not None and pending is not None:
            create = (
                f"would resume pending version {pending_id} ({self.strategy.describe(pending)})"
            )
        else:
            create = f"would put a new value as AWSPENDING (now {self.strategy.describe(current)})"
        self._step("create", "would", current_id, new_id, create)
        plan = await self.strategy.plan(current, pending)
        for step, detail in zip(("set", "test"), plan, strict=False):
            self._step(step, "would", current_id, new_id, detail)
        self._step(
            "finish",
            "would",
            current_id,
            new_id,
            f"would move AWSCURRENT from {current_id} to the pending version",
        )
        return self._result(
            current_id, new_id, completed=False, dry=True, resumed=pending_id is not None
        )


async def run_rotation(
    client: Any,
    settings: Settings,
    secret_name: str,
    strategy: RotationStrategy,
    *,
    dry_run: bool = False,
    stop_after: StopAfter | None = None,
) -> RotationResult:
    """Run (or resume, or plan) the four steps for `secret_name` with `client`."""
    rotation = _Rotation(client, settings, secret_name, strategy)
    return await rotation.run(dry_run=dry_run, stop_after=stop_after)


# ------------------------------------------------------------------ command line


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
        f"rotation of {result.secret_name}: {state}",
        f"  current version: {result.old_version_id}",
        f"  pending version: {result.new_version_id}",
        *(f"  {detail}" for detail in result.details),
    ]
    sys.stdout.write("\n".join(lines) + "\n")


async def _rotate(
    args: argparse.Namespace, settings: Settings, new_key: SecretStr | None
) -> RotationResult:
    if args.target == "postgres":
        from kb_mcp.ops.rotate_postgres import rotate_postgres

        return await rotate_postgres(
            settings,
            secret_name=args.secret,
            master_secret=args.master_secret,
            dry_run=args.dry_run,
            stop_after=args.stop_after,
        )
    from kb_mcp.ops.rotate_openai import rotate_openai

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
        settings = cli_settings(args.env)
        if args.target == "postgres" and (args.generate or args.new_value_from_env):
            raise ValueError(
                "postgres passwords are generated; --generate and "
                "--new-value-from-env are for openai"
            )
        new_key = _read_new_key(args) if args.target == "openai" else None
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
        "--stop-after",
        choices=("create", "set", "test"),
        help="stop after this step (a rerun resumes); for drills",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=_run)
