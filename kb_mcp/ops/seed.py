"""`kb-mcp secrets seed`: create the development secrets in moto or LocalStack.

Used by docker compose's one-shot seeding service and by the local stack. Values come
from environment variables named on the command line (never from arguments: they would
show in `ps`), or from the fallback set (`OPENAI_API_KEY`, `DB_HOST`, `DB_PORT`,
`DB_USER`, `DB_PASSWORD`, `DB_NAME`). Each value is validated against its schema before
it is written.

Idempotent: a missing secret is created; an existing one is left alone when its value is
the same (or with `--if-missing`, or when the key would be generated), and otherwise
gets a new `AWSCURRENT` version with `PutSecretValue`. Refuses production (`KB_MCP_ENV`
production or unset, or `--env prod`) unless `--force`. Beside a running `kb-mcp dev`
(no `AWS_ENDPOINT_URL`, `--env dev`) its stack is the target, as for verify, age and
rotate (`kb_mcp.ops.local_stack`); the target is named on stderr either way.

JSON documents are built here from separate values (`--postgres-master-password-from-env`
with the `DB_*` host, port and database), never pasted together by a shell or compose
file, so any character in a password is safe. `--openai-key-file` reads a key from a file
(compose mounts it as a secret, so it never shows in `docker inspect`). With
`--reconcile-database` the database role then follows the credentials secret (`reconcile`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from pydantic import SecretStr
from secretswap.port import AWSCURRENT
from secretswap.schemas import SecretModel, parse_secret

from kb_mcp.config import Environment, Settings
from kb_mcp.errors import (
    EXIT_OK,
    EXIT_STARTUP_FAILURE,
    EXIT_USAGE,
    ConfigError,
    KbMcpError,
    SecretNotFoundError,
)
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.aws import (
    ENV_CHOICES,
    aws_client,
    aws_error,
    cli_settings,
    error_code,
    say_target,
    setup_cli_logging,
)
from kb_mcp.ops.local_stack import use_local_stack
from kb_mcp.ops.reconcile import reconcile_database_role
from kb_mcp.ops.rotation.openai_key import generate_openai_key
from kb_mcp.ops.rotation.postgres import default_master_secret_name
from kb_mcp.ops.rotation.steps import read_version
from kb_mcp.secrets.schemas import AuthTokenSecret, OpenAIKeySecret, PostgresCredentials

__all__ = ["SeedOutcome", "register", "seed_secrets"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    """What happened to one secret: created, updated, unchanged or kept (left as it was)."""

    name: str
    action: str
    version_id: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _postgres_from_settings(settings: Settings) -> SecretStr | None:
    host, port, user = settings.db_host, settings.db_port, settings.db_user
    password, database = settings.db_password, settings.db_name
    if host is None or port is None or user is None or password is None or database is None:
        return None
    return SecretStr(
        json.dumps(
            {
                "username": user,
                "password": password.get_secret_value(),
                "host": host,
                "port": port,
                "database": database,
            }
        )
    )


async def _seed_one(
    client: Any,
    settings: Settings,
    name: str,
    value: SecretStr | None,
    model: type[SecretModel],
    *,
    if_missing: bool,
    source_hint: str,
) -> SeedOutcome:
    raw = None if value is None else value.get_secret_value()
    if raw is not None:
        secret_registry().register_secret_string(raw)
        parse_secret(model, raw, secret_name=name, region=settings.aws_region)
        try:
            response = await client.create_secret(
                Name=name,
                SecretString=raw,
                Description="kb-mcp development secret (seeded by kb-mcp secrets seed)",
            )
        except Exception as exc:
            if error_code(exc) != "ResourceExistsException":
                raise aws_error(exc, secret_name=name, settings=settings) from exc
        else:
            return SeedOutcome(name, "created", str(response.get("VersionId") or "") or None)
    try:
        version_id, current = await read_version(client, settings, name, AWSCURRENT)
    except SecretNotFoundError:
        if raw is None:
            raise ConfigError(
                f"no value to seed secret {name}",
                variable=source_hint,
                hint=f"set {source_hint}",
            ) from None
        raise
    if current == raw:
        return SeedOutcome(name, "unchanged", version_id)
    if raw is None or if_missing:
        return SeedOutcome(name, "kept", version_id)
    try:
        response = await client.put_secret_value(SecretId=name, SecretString=raw)
    except Exception as exc:
        raise aws_error(exc, secret_name=name, settings=settings) from exc
    return SeedOutcome(name, "updated", str(response["VersionId"]))


async def seed_secrets(
    settings: Settings,
    *,
    openai_key: SecretStr | None = None,
    postgres_json: SecretStr | None = None,
    postgres_master_json: SecretStr | None = None,
    auth_token: SecretStr | None = None,
    generate_openai_key_if_missing: bool = False,
    if_missing: bool = False,
    force: bool = False,
) -> tuple[SeedOutcome, ...]:
    """Create or update the secrets of `settings.env`; values default to the fallback set.

    A generated OpenAI key is only written when the secret does not exist yet, so that a
    rerun does not rotate it.
    """
    if settings.env is Environment.PRODUCTION and not force:
        raise ConfigError(
            "refusing to seed production secrets",
            variable="KB_MCP_ENV",
            hint="seed is for development stacks; pass --force to seed anyway",
        )
    plan: list[tuple[str, SecretStr | None, type[SecretModel], bool, str]] = []
    key = openai_key or settings.openai_api_key
    if key is not None and not key.get_secret_value():
        key = None  # OPENAI_API_KEY set but empty (compose's `${OPENAI_API_KEY:-}`)
    generated = key is None and generate_openai_key_if_missing
    if generated:
        key = generate_openai_key()
    plan.append(
        (
            settings.openai_secret_name,
            key,
            OpenAIKeySecret,
            if_missing or generated,
            "OPENAI_API_KEY or --openai-key-from-env",
        )
    )
    plan.append(
        (
            settings.postgres_secret_name,
            postgres_json or _postgres_from_settings(settings),
            PostgresCredentials,
            if_missing,
            "DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME or --postgres-json-from-env",
        )
    )
    if postgres_master_json is not None:
        plan.append(
            (
                default_master_secret_name(settings),
                postgres_master_json,
                PostgresCredentials,
                if_missing,
                "--postgres-master-json-from-env",
            )
        )
    token = auth_token or settings.auth_token
    if settings.auth_token_secret_name and token is not None:
        plan.append(
            (
                settings.auth_token_secret_name,
                token,
                AuthTokenSecret,
                if_missing,
                "KB_MCP_AUTH_TOKEN",
            )
        )
    outcomes = []
    async with aws_client(settings, "secretsmanager") as client:
        for name, value, model, keep, hint in plan:
            outcome = await _seed_one(
                client, settings, name, value, model, if_missing=keep, source_hint=hint
            )
            log.info(
                "secret.seeded", secret=name, action=outcome.action, version_id=outcome.version_id
            )
            outcomes.append(outcome)
    return tuple(outcomes)


def _from_env(variable: str | None) -> SecretStr | None:
    if not variable:
        return None
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ValueError(f"environment variable {variable} is empty or unset")
    return SecretStr(value)


def _key_file(path: str | None) -> SecretStr | None:
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read --openai-key-file {path}: {exc.strerror}") from None
    return SecretStr(value) if value else None  # empty: none given (compose's docker/no-openai-key)


def _master_json(args: argparse.Namespace, settings: Settings) -> SecretStr | None:
    if args.postgres_master_json_from_env:
        return _from_env(args.postgres_master_json_from_env)
    password = _from_env(args.postgres_master_password_from_env)
    if password is None:
        return None
    if settings.db_host is None or settings.db_port is None or settings.db_name is None:
        raise ValueError("--postgres-master-password-from-env needs DB_HOST, DB_PORT, DB_NAME")
    document = {
        "username": args.postgres_master_user,
        "password": password.get_secret_value(),
        "host": settings.db_host,
        "port": settings.db_port,
        "database": settings.db_name,
    }
    return SecretStr(json.dumps(document))


def _run(args: argparse.Namespace) -> int:
    try:
        # Beside `kb-mcp dev`, its stack is the target (as for verify, age and rotate).
        stack = use_local_stack("secrets seed", env=args.env)
        process = cli_settings(None)
        settings = cli_settings(args.env)
        if stack is None:
            say_target("secrets seed", settings)
        values = {
            "openai_key": _from_env(args.openai_key_from_env) or _key_file(args.openai_key_file),
            "postgres_json": _from_env(args.postgres_json_from_env),
            "postgres_master_json": _master_json(args, settings),
            "auth_token": _from_env(args.auth_token_from_env),
        }
    except KbMcpError:
        raise
    except ValueError as exc:
        sys.stderr.write(f"kb-mcp secrets seed: error: {exc}\n")
        return EXIT_USAGE
    setup_cli_logging(settings)
    if process.env is Environment.PRODUCTION and not args.force:
        sys.stderr.write(
            "kb-mcp secrets seed: refusing: KB_MCP_ENV is production (or unset); seed is for "
            "development stacks (set KB_MCP_ENV=development, or pass --force)\n"
        )
        return EXIT_STARTUP_FAILURE
    outcomes = asyncio.run(
        seed_secrets(
            settings,
            **values,
            generate_openai_key_if_missing=args.generate_openai_key,
            if_missing=args.if_missing,
            force=args.force,
        )
    )
    reconciled = None
    if args.reconcile_database:
        try:
            reconciled = asyncio.run(
                reconcile_database_role(settings, groups=tuple(args.app_group or ()))
            )
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            sys.stderr.write(
                f"kb-mcp secrets seed: could not set the database role of secret "
                f"{settings.postgres_secret_name} ({type(exc).__name__}); check the master "
                "secret and that the database is up\n"
            )
            return EXIT_STARTUP_FAILURE
    if args.json:
        document = [o.to_json() for o in outcomes]
        if reconciled is not None:
            document.append(reconciled.to_json())
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        for outcome in outcomes:
            sys.stdout.write(f"{outcome.action:<9} {outcome.name}  version {outcome.version_id}\n")
        if reconciled is not None:
            sys.stdout.write(
                f"{reconciled.action:<9} role {reconciled.role} with the password of version "
                f"{reconciled.version_id}\n"
            )
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `seed` (create the development secrets in moto or LocalStack)."""
    parser = subparsers.add_parser(
        "seed",
        help="create the development secrets in moto or LocalStack (AWS_ENDPOINT_URL)",
        description=(
            "Create (or update) kb-mcp/{env}/openai-api-key and kb-mcp/{env}/postgres-"
            "credentials from environment variables. Idempotent. Refuses production."
        ),
    )
    parser.add_argument("--env", choices=ENV_CHOICES, default="dev", help="deployment (dev)")
    parser.add_argument("--openai-key-from-env", metavar="VAR", help="default OPENAI_API_KEY")
    parser.add_argument(
        "--postgres-json-from-env", metavar="VAR", help="default: built from DB_* variables"
    )
    parser.add_argument(
        "--postgres-master-json-from-env",
        metavar="VAR",
        help="also seed kb-mcp/{env}/postgres-master (used by rotate postgres)",
    )
    parser.add_argument(
        "--postgres-master-password-from-env",
        metavar="VAR",
        help="seed kb-mcp/{env}/postgres-master from this password and DB_HOST/DB_PORT/DB_NAME",
    )
    parser.add_argument(
        "--postgres-master-user", default="postgres", help="master user (default postgres)"
    )
    parser.add_argument(
        "--openai-key-file", metavar="PATH", help="read the openai key from a file (empty: none)"
    )
    parser.add_argument(
        "--reconcile-database",
        action="store_true",
        help="then set the credentials secret's role to its password (needs the master secret)",
    )
    parser.add_argument(
        "--app-group",
        action="append",
        metavar="ROLE",
        help="with --reconcile-database: group granted to the role (repeatable)",
    )
    parser.add_argument(
        "--auth-token-from-env",
        metavar="VAR",
        help="value of KB_MCP_AUTH_TOKEN_SECRET (default KB_MCP_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--generate-openai-key",
        action="store_true",
        help="generate a fake-format key when none is given and the secret is missing",
    )
    parser.add_argument("--if-missing", action="store_true", help="never change existing secrets")
    parser.add_argument("--force", action="store_true", help="seed even in production")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(handler=_run)
