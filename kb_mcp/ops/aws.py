"""Shared plumbing of the `kb-mcp secrets ...` operations commands.

- `aws_client(settings, service)`: an aioboto3 client (secretsmanager, sns) configured
  from `Settings` (region, endpoint, timeouts), with the SDK's standard retries.
- `aws_error(...)`: a Secrets Manager error turned into the kb-mcp error tree.
- `cli_settings(env)` / `setup_cli_logging(settings)`: what every sub-command handler does
  first. Logging goes to stderr; reports go to stdout.
- `version_stages(describe)`: the VersionIdsToStages map of a `describe_secret` answer.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from secretswap.aws.classify import AWS_CONFIG_ERRORS, AWS_CONFIG_HINT, classify_aws_error

from kb_mcp.config import Environment, Settings, load_settings
from kb_mcp.errors import ConfigError, SecretsError
from kb_mcp.observability.logging import RedactingHandler, configure_logging
from kb_mcp.secrets.aws import NOT_FOUND_HINT

__all__ = [
    "ENV_CHOICES",
    "aws_client",
    "aws_error",
    "cli_settings",
    "error_code",
    "say_target",
    "setup_cli_logging",
    "stage_owner",
    "version_stages",
]

ENV_CHOICES = ("dev", "staging", "prod", "development", "production")
"""Values `--env` accepts: the short names used in secret names, or the long ones."""

_ENV_BY_NAME = {
    "dev": Environment.DEVELOPMENT,
    "development": Environment.DEVELOPMENT,
    "staging": Environment.STAGING,
    "prod": Environment.PRODUCTION,
    "production": Environment.PRODUCTION,
}


def parse_env(name: str) -> Environment:
    """`dev`/`development`, `staging`, `prod`/`production` as an `Environment`."""
    try:
        return _ENV_BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}: use one of dev, staging, prod") from None


def cli_settings(
    env: str | None = None, *, local_stack: str | None = None, **overrides: Any
) -> Settings:
    """Settings from the environment, with `--env` (when given) deciding the secret names.

    `local_stack` (the command's name) lets a running `kb-mcp dev` be the target when no
    other was chosen (see `local_stack.use_local_stack`).
    """
    stack = None
    if local_stack is not None:
        from kb_mcp.ops.local_stack import use_local_stack

        stack = use_local_stack(local_stack, env=env)
    if env is not None:
        overrides["env"] = parse_env(env)
    settings = load_settings(**overrides)
    if local_stack is not None and stack is None:
        say_target(local_stack, settings)
    return settings


def say_target(command: str, settings: Settings) -> None:
    """One line on stderr: which Secrets Manager and which secrets a command works on."""
    where = settings.aws_endpoint_url or "AWS"
    sys.stderr.write(
        f"kb-mcp {command}: Secrets Manager at {where} in {settings.aws_region}, secrets of "
        f"{settings.env.value} ({settings.openai_secret_name}, ...)\n"
    )


def setup_cli_logging(settings: Settings) -> None:
    """Configure logging for a command, unless the process already did (tests, the drill)."""
    if any(isinstance(h, RedactingHandler) for h in logging.getLogger().handlers):
        return
    configure_logging(json_lines=settings.json_logs, level=settings.log_level)


@asynccontextmanager
async def aws_client(settings: Settings, service: str) -> AsyncIterator[Any]:
    """An aioboto3 client for `service`, configured from settings."""
    config = AioConfig(
        connect_timeout=settings.aws_connect_timeout_s,
        read_timeout=settings.aws_read_timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    async with AsyncExitStack() as stack:
        try:
            session = aioboto3.Session()  # reads AWS_PROFILE and the config files
            client = await stack.enter_async_context(
                session.client(
                    service,
                    region_name=settings.aws_region,
                    endpoint_url=settings.aws_endpoint_url,
                    config=config,
                )
            )
        except ValueError as exc:  # botocore rejects a malformed endpoint or region here
            raise ConfigError(
                f"cannot open an aws {service} client: {str(exc).lower()}",
                variable="AWS_ENDPOINT_URL",
                hint="check AWS_ENDPOINT_URL (a full url such as http://localhost:4566) "
                "and AWS_REGION",
            ) from exc
        except AWS_CONFIG_ERRORS as exc:  # a malformed region is the ValueError above
            raise ConfigError(
                f"cannot open an aws {service} client: {str(exc).lower()}",
                variable="AWS_PROFILE",
                hint=AWS_CONFIG_HINT,
            ) from exc
        yield client


def aws_error(exc: BaseException, *, secret_name: str, settings: Settings) -> SecretsError:
    """The kb-mcp error for an exception from a Secrets Manager call about `secret_name`."""
    return classify_aws_error(
        exc,
        secret_name=secret_name,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        not_found_hint=NOT_FOUND_HINT,
    )


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore `ClientError` (empty for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", "") or "")
    return ""


def version_stages(describe: Mapping[str, Any]) -> dict[str, list[str]]:
    """VersionId -> staging labels, from a `describe_secret` response."""
    raw = describe.get("VersionIdsToStages") or {}
    return {str(version): list(stages or ()) for version, stages in raw.items()}


def stage_owner(stages: Mapping[str, list[str]], stage: str) -> str | None:
    """The VersionId holding `stage`, or None."""
    for version, labels in stages.items():
        if stage in labels:
            return version
    return None
