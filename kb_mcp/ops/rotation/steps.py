"""The four steps of AWS rotation (create, set, test, finish), resumable, for any secret.

The steps are the ones a Secrets Manager rotation Lambda runs, driven from the command
line (`kb-mcp secrets rotate`) or the drill instead of a Lambda:

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
are read or generated, and never reported: results name secrets, versions and users.
What differs between secrets is a `RotationStrategy` (`rotate_postgres`, `rotate_openai`).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import structlog
from secretswap.port import AWSCURRENT, AWSPENDING, AWSPREVIOUS

from kb_mcp.config import Settings
from kb_mcp.errors import KbMcpError, RotationError, SecretNotFoundError
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.aws import aws_error, stage_owner, version_stages

__all__ = [
    "STEPS",
    "RotationResult",
    "RotationStrategy",
    "StopAfter",
    "finish_rotation",
    "read_version",
    "run_rollback",
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
    action: str = "rotation"
    """"rotation", or "rollback" (new_version_id is then the restored AWSPREVIOUS)."""

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
        self.action = "rotation"

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
            action=self.action,
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

    async def _move_current(self, current_id: str, new_id: str) -> dict[str, list[str]]:
        """AWSCURRENT to `new_id`, AWSPREVIOUS to `current_id`; the stages afterwards."""
        await self._call(
            "update_secret_version_stage",
            VersionStage=AWSCURRENT,
            MoveToVersionId=new_id,
            RemoveFromVersionId=current_id,
        )
        stages = await self._stages()
        previous_id = stage_owner(stages, AWSPREVIOUS)
        if previous_id != current_id:  # AWS moves it by itself; make sure on any backend
            kwargs: dict[str, Any] = {"VersionStage": AWSPREVIOUS, "MoveToVersionId": current_id}
            if previous_id is not None:
                kwargs["RemoveFromVersionId"] = previous_id
            await self._call("update_secret_version_stage", **kwargs)
        return stages

    async def _finish(self, current_id: str, pending_id: str) -> None:
        stages = await self._move_current(current_id, pending_id)
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

    async def rollback(self, *, dry_run: bool) -> RotationResult:
        """Test the AWSPREVIOUS value, then move AWSCURRENT back to it."""
        self.action = "rollback"
        stages = await self._stages()
        current_id = stage_owner(stages, AWSCURRENT)
        previous_id = stage_owner(stages, AWSPREVIOUS)
        if current_id is None or previous_id is None:
            raise SecretNotFoundError(
                f"secret {self.name} has no AWSPREVIOUS version to roll back to",
                secret_name=self.name,
                region=self.settings.aws_region,
                aws_error="ResourceNotFoundException",
                hint="list versions with aws secretsmanager list-secret-version-ids and move "
                "AWSCURRENT by hand if an older version is the right one",
            )
        _, previous = await read_version(
            self.client, self.settings, self.name, AWSPREVIOUS, previous_id
        )
        if dry_run:
            self._step(
                "test",
                "would",
                current_id,
                previous_id,
                f"would test the previous version ({self.strategy.describe(previous)})",
            )
            self._step(
                "finish",
                "would",
                current_id,
                previous_id,
                f"would move AWSCURRENT from {current_id} back to {previous_id}",
            )
            return self._result(current_id, previous_id, completed=False, dry=True, resumed=False)
        try:
            detail = await self.strategy.test_secret(previous)
        except RotationError as exc:
            exc.version_id = previous_id
            log.error(
                "rotation.rollback_refused",
                secret=self.name,
                current_version_id=current_id,
                previous_version_id=previous_id,
                detail=str(exc),
            )
            raise
        self._step("test", "done", current_id, previous_id, detail)
        await self._move_current(current_id, previous_id)
        self._step(
            "finish",
            "done",
            current_id,
            previous_id,
            f"AWSCURRENT moved back to {previous_id}; AWSPREVIOUS is {current_id}",
        )
        log.warning(
            "rotation.rolled_back",
            secret=self.name,
            from_version_id=current_id,
            to_version_id=previous_id,
        )
        return self._result(current_id, previous_id, completed=True, dry=False, resumed=False)

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


async def run_rollback(
    client: Any,
    settings: Settings,
    secret_name: str,
    strategy: RotationStrategy,
    *,
    dry_run: bool = False,
) -> RotationResult:
    """Move AWSCURRENT back to AWSPREVIOUS, once the previous value passed the test step."""
    rotation = _Rotation(client, settings, secret_name, strategy)
    return await rotation.rollback(dry_run=dry_run)


async def finish_rotation(
    client: Any,
    settings: Settings,
    secret_name: str,
    strategy: RotationStrategy,
    *,
    current_id: str,
    pending_id: str,
) -> RotationResult:
    """The finish step alone (a rotation function's `finishSecret`): AWSCURRENT to
    `pending_id`, AWSPREVIOUS to `current_id`, AWSPENDING cleared."""
    rotation = _Rotation(client, settings, secret_name, strategy)
    await rotation._finish(current_id, pending_id)
    return rotation._result(current_id, pending_id, completed=True, dry=False, resumed=False)
