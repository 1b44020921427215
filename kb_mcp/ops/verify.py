"""`kb-mcp secrets verify`: can this identity, from here, read and use every secret?

Fetches each configured secret's `AWSCURRENT` version through the same
`AwsSecretsManagerProvider` the server uses, validates it against its schema, logs in
to PostgreSQL with the credentials (`SELECT 1` and the server version) and, when asked,
lists models with the OpenAI key. Reports each secret's VersionId and age, or the error
class and message (never a value). Exit 1 on any problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from secretswap.metrics import MetricsRegistry
from secretswap.schemas import SecretModel

from kb_mcp.config import Settings
from kb_mcp.errors import EXIT_OK, EXIT_STARTUP_FAILURE, EXIT_USAGE, KbMcpError
from kb_mcp.ops.aws import ENV_CHOICES, cli_settings, setup_cli_logging
from kb_mcp.ops.rotation.openai_key import probe_openai_key
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.schemas import AuthTokenSecret, OpenAIKeySecret, PostgresCredentials

__all__ = ["SecretCheck", "VerifyReport", "register", "verify_secrets"]

log = structlog.get_logger(__name__)

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class SecretCheck:
    """The outcome for one secret: version and age, or what went wrong."""

    name: str
    kind: str
    ok: bool
    version_id: str | None = None
    created_at: datetime | None = None
    age_days: float | None = None
    detail: str = ""
    error_class: str | None = None
    error: str | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "ok": self.ok,
            "version_id": self.version_id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "age_days": None if self.age_days is None else round(self.age_days, 2),
            "detail": self.detail,
            "error_class": self.error_class,
            "error": self.error,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checks: tuple[SecretCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "secrets": [check.to_json() for check in self.checks]}


def _secret_kinds(settings: Settings) -> list[tuple[str, str, type[SecretModel]]]:
    kinds: list[tuple[str, str, type[SecretModel]]] = [
        (settings.openai_secret_name, "openai", OpenAIKeySecret),
        (settings.postgres_secret_name, "postgres", PostgresCredentials),
    ]
    if settings.auth_token_secret_name:
        kinds.append((settings.auth_token_secret_name, "auth-token", AuthTokenSecret))
    return kinds


async def _probe_postgres(credentials: PostgresCredentials, timeout_s: float) -> str:
    conn = await asyncpg.connect(**credentials.connect_kwargs(), timeout=timeout_s)
    try:
        await conn.fetchval("SELECT 1")
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return f"logged in as {credentials.identity()}, server {version}"


def _failed(name: str, kind: str, exc: BaseException, **known: Any) -> SecretCheck:
    hint = exc.hint if isinstance(exc, KbMcpError) else None
    code = getattr(exc, "sqlstate", None)
    error_class = type(exc).__name__ + (f" ({code})" if code else "")
    message = (
        str(exc) if isinstance(exc, KbMcpError) else (getattr(exc, "message", None) or str(exc))
    )
    return SecretCheck(
        name=name, kind=kind, ok=False, error_class=error_class, error=message, hint=hint, **known
    )


async def _check_one(
    provider: AwsSecretsManagerProvider,
    settings: Settings,
    name: str,
    kind: str,
    model: type[SecretModel],
    *,
    now: datetime,
    check_database: bool,
    probe_openai: bool,
) -> SecretCheck:
    try:
        loaded = await provider.get_secret_json(name, model)
    except KbMcpError as exc:
        return _failed(name, kind, exc)
    version = loaded.version
    created = version.created_at
    age = None if created is None else max(0.0, (now - created).total_seconds() / SECONDS_PER_DAY)
    known: dict[str, Any] = {
        "version_id": version.version_id,
        "created_at": created,
        "age_days": age,
    }
    detail = "valid"
    value = loaded.value
    try:
        if isinstance(value, PostgresCredentials) and check_database:
            detail = await _probe_postgres(value, settings.db_connect_timeout_s)
        elif isinstance(value, OpenAIKeySecret) and probe_openai:
            count = await probe_openai_key(
                value.api_key,
                base_url=settings.openai_base_url,
                timeout_s=settings.openai_timeout_s,
                secret_name=name,
            )
            detail = f"key accepted, {count} models listed"
    except (asyncpg.PostgresError, OSError, TimeoutError, KbMcpError) as exc:
        return _failed(name, kind, exc, **known)
    return SecretCheck(name=name, kind=kind, ok=True, detail=detail, **known)


async def verify_secrets(
    settings: Settings,
    *,
    now: datetime | None = None,
    check_database: bool = True,
    probe_openai: bool = False,
) -> VerifyReport:
    """Fetch, validate and (PostgreSQL; OpenAI when asked) try every configured secret."""
    moment = now or datetime.now(UTC)
    provider = AwsSecretsManagerProvider(
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        cache_ttl_s=settings.cache_ttl_s,
        metrics=MetricsRegistry(),
        retry_budget_s=settings.secrets_retry_budget_s,
        connect_timeout_s=settings.aws_connect_timeout_s,
        read_timeout_s=settings.aws_read_timeout_s,
    )
    async with provider:
        checks = await asyncio.gather(
            *(
                _check_one(
                    provider,
                    settings,
                    name,
                    kind,
                    model,
                    now=moment,
                    check_database=check_database,
                    probe_openai=probe_openai,
                )
                for name, kind, model in _secret_kinds(settings)
            )
        )
    for check in checks:
        log.log(
            logging.INFO if check.ok else logging.WARNING,
            "secret.verified" if check.ok else "secret.verify_failed",
            secret=check.name,
            version_id=check.version_id,
            error=check.error_class,
            detail=check.error or check.detail,
        )
    return VerifyReport(tuple(checks))


def _print_report(report: VerifyReport) -> None:
    lines = []
    for check in report.checks:
        if check.ok:
            age = "unknown age" if check.age_days is None else f"{check.age_days:.1f} days old"
            lines.append(f"OK     {check.name}  version {check.version_id}  {age}  {check.detail}")
        else:
            lines.append(f"ERROR  {check.name}  {check.error_class}: {check.error}")
            if check.hint:
                lines.append(f"       check: {check.hint}")
    lines.append("all secrets verified" if report.ok else "verification failed")
    sys.stdout.write("\n".join(lines) + "\n")


def _run(args: argparse.Namespace) -> int:
    try:
        settings = cli_settings(args.env, local_stack="secrets verify")
    except KbMcpError:
        raise
    except ValueError as exc:
        sys.stderr.write(f"kb-mcp secrets verify: error: {exc}\n")
        return EXIT_USAGE
    setup_cli_logging(settings)
    report = asyncio.run(
        verify_secrets(
            settings, check_database=not args.skip_database, probe_openai=args.probe_openai
        )
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        _print_report(report)
    return EXIT_OK if report.ok else EXIT_STARTUP_FAILURE


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `verify` (fetch, validate and try every secret)."""
    parser = subparsers.add_parser(
        "verify",
        help="fetch and validate every secret, log in to PostgreSQL",
        description=(
            "Read each configured secret from Secrets Manager as the server would, validate "
            "it, log in to PostgreSQL with it, and report VersionIds and ages. Exit 1 on any "
            "problem. Never prints a value."
        ),
    )
    parser.add_argument("--env", choices=ENV_CHOICES, help="deployment (default: KB_MCP_ENV)")
    parser.add_argument("--skip-database", action="store_true", help="do not connect to postgres")
    parser.add_argument(
        "--probe-openai", action="store_true", help="also list models with the openai key"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=_run)
