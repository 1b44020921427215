"""The PostgreSQL rotation function: Secrets Manager's rotation contract over the same
steps and alternating-users strategy as `kb-mcp secrets rotate postgres`.

Secrets Manager invokes the function four times per rotation with
`{"SecretId", "ClientRequestToken", "Step"}`; the token is the VersionId of the new
version, created with `AWSPENDING` before the first call:

- `createSecret`: put the other user with a fresh password as `AWSPENDING` under the token
  (`PutSecretValue` with `ClientRequestToken`), unless that version already has a value;
- `setSecret`: create or re-password that role with the master secret
  (`PostgresMultiUserStrategy.set_secret`, idempotent);
- `testSecret`: log in with it and run `select 1`;
- `finishSecret`: move `AWSCURRENT` to the token (`finish_rotation`, as the CLI does).

Each step is idempotent: Secrets Manager retries a failed invocation with the same token,
and a step already done is done again harmlessly or skipped. A token that already holds
`AWSCURRENT` is a rotation that finished: every step returns at once. A step raises on
failure (the invocation fails, Secrets Manager records it and retries), with `AWSCURRENT`
untouched before `finishSecret`. Values never reach a log line or an error message.

Deployed by `secrets/terraform/rotation.tf` (handler `kb_mcp.ops.rotation.lambda_handler.
handler`), configured by the same settings as the CLI (`KB_MCP_ENV`, `AWS_REGION`); the
master secret is `kb-mcp/{env}/postgres-master`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from secretswap.port import AWSCURRENT, AWSPENDING

from kb_mcp.config import Settings, load_settings
from kb_mcp.errors import RotationError, SecretNotFoundError
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.aws import aws_client, aws_error, setup_cli_logging, stage_owner, version_stages
from kb_mcp.ops.rotation.postgres import postgres_strategy
from kb_mcp.ops.rotation.steps import finish_rotation, read_version

__all__ = ["EVENT_STEPS", "RotationEvent", "StepOutcome", "handle", "handler"]

log = structlog.get_logger(__name__)

EVENT_STEPS = {
    "createSecret": "create",
    "setSecret": "set",
    "testSecret": "test",
    "finishSecret": "finish",
}
"""Secrets Manager's step names -> the CLI's."""


@dataclass(frozen=True, slots=True)
class RotationEvent:
    """One invocation of the rotation function."""

    secret_id: str
    token: str
    step: str

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> RotationEvent:
        """The event's three fields; a missing one or an unknown step is a ValueError."""
        try:
            secret_id, token, step = (
                str(event["SecretId"]),
                str(event["ClientRequestToken"]),
                str(event["Step"]),
            )
        except KeyError as exc:
            raise ValueError(f"rotation event has no {exc.args[0]}") from None
        if step not in EVENT_STEPS:
            raise ValueError(f"rotation event has unknown step {step!r}")
        return cls(secret_id, token, step)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one invocation did; versions and users, never a value."""

    step: str
    secret_id: str
    token: str
    detail: str
    duration_s: float


def _refused(event: RotationEvent, why: str, hint: str = "") -> RotationError:
    return RotationError(
        f"rotation step {event.step} of secret {event.secret_id} refused: {why}",
        secret_name=event.secret_id,
        version_id=event.token,
        hint=hint,
    )


async def _create(client: Any, settings: Settings, event: RotationEvent, strategy: Any) -> str:
    try:
        await read_version(client, settings, event.secret_id, AWSPENDING, event.token)
    except SecretNotFoundError:
        pass  # not created yet (AWS pre-creates the version without a value)
    else:
        return f"version {event.token} already holds the pending value"
    _, current = await read_version(client, settings, event.secret_id, AWSCURRENT)
    pending = await strategy.new_value(current)
    secret_registry().register_secret_string(pending)
    try:
        await client.put_secret_value(
            SecretId=event.secret_id,
            ClientRequestToken=event.token,
            SecretString=pending,
            VersionStages=[AWSPENDING],
        )
    except Exception as exc:
        raise aws_error(exc, secret_name=event.secret_id, settings=settings) from exc
    return f"put {strategy.describe(pending)} as AWSPENDING in version {event.token}"


async def _run_step(client: Any, settings: Settings, event: RotationEvent) -> str:
    try:
        described = await client.describe_secret(SecretId=event.secret_id)
    except Exception as exc:
        raise aws_error(exc, secret_name=event.secret_id, settings=settings) from exc
    stages = version_stages(described)
    labels = stages.get(event.token)
    if labels is not None and AWSCURRENT in labels:
        return f"version {event.token} is already AWSCURRENT: nothing to do"
    if event.step != "createSecret" and (labels is None or AWSPENDING not in labels):
        raise _refused(
            event,
            f"version {event.token} is not AWSPENDING",
            hint="a rotation started with another token; let Secrets Manager retry it",
        )
    strategy = await postgres_strategy(client, settings, event.secret_id)
    if event.step == "createSecret":
        return await _create(client, settings, event, strategy)
    _, pending = await read_version(client, settings, event.secret_id, AWSPENDING, event.token)
    if event.step == "setSecret":
        _, current = await read_version(client, settings, event.secret_id, AWSCURRENT)
        detail: str = await strategy.set_secret(pending, current)
        return detail
    if event.step == "testSecret":
        detail = await strategy.test_secret(pending)
        return detail
    current_id = stage_owner(stages, AWSCURRENT)
    if current_id is None:
        raise _refused(event, "the secret has no AWSCURRENT version")
    result = await finish_rotation(
        client, settings, event.secret_id, strategy, current_id=current_id, pending_id=event.token
    )
    return result.details[-1].removeprefix("finish: ")


async def handle(settings: Settings, event: Mapping[str, Any]) -> StepOutcome:
    """Run the step `event` names against Secrets Manager; raises when it fails."""
    parsed = RotationEvent.parse(event)
    started = time.monotonic()
    async with aws_client(settings, "secretsmanager") as client:
        try:
            detail = await _run_step(client, settings, parsed)
        except Exception as exc:
            log.error(
                "rotation.lambda_step_failed",
                step=parsed.step,
                secret=parsed.secret_id,
                version_id=parsed.token,
                error=type(exc).__name__,
                detail=str(exc),
            )
            raise
    outcome = StepOutcome(
        parsed.step, parsed.secret_id, parsed.token, detail, time.monotonic() - started
    )
    log.info(
        "rotation.lambda_step",
        step=outcome.step,
        secret=outcome.secret_id,
        version_id=outcome.token,
        detail=outcome.detail,
        duration_s=round(outcome.duration_s, 3),
    )
    return outcome


def handler(event: Mapping[str, Any], context: Any) -> None:
    """The Lambda entry point (`kb_mcp.ops.rotation.lambda_handler.handler`)."""
    del context  # unused: the event carries everything
    settings = load_settings()
    setup_cli_logging(settings)
    asyncio.run(handle(settings, event))
