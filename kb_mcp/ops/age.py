"""`kb-mcp secrets age`: the 30-day rotation policy, checked and alerted on.

A secret's last rotation is the creation date of its `AWSCURRENT` version: which version
that is comes from `DescribeSecret`, its `CreatedDate` from `ListSecretVersionIds`. That
is when the value in service was written, whoever wrote it (this tool, a rotation
Lambda, a console edit; a rollback to an old version is correctly reported as old).
`DescribeSecret`'s `LastRotatedDate` is only set by AWS's managed rotation, and
`LastChangedDate` moves with tag or description edits, so they serve only as fallbacks
when no version date is available (`LastRotatedDate`, then the secret's `CreatedDate`).

Secrets older than the limit (30 days unless configured) are flagged; one alert is sent
to an SNS topic and/or a Slack-compatible webhook, naming each secret, its age and the
runbook, never a value. `SecretAgeDays` gauges (by `SecretName`) go out as one EMF flush,
on stderr: stdout holds the report alone.
The exit code is 1 when any secret is overdue or could not be checked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import structlog
from secretswap.metrics import MetricsRegistry
from secretswap.port import AWSCURRENT

from kb_mcp.config import Settings
from kb_mcp.errors import EXIT_OK, EXIT_STARTUP_FAILURE, EXIT_USAGE, KbMcpError
from kb_mcp.observability.metrics import EmfEmitter
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.aws import (
    ENV_CHOICES,
    aws_client,
    aws_error,
    cli_settings,
    setup_cli_logging,
    stage_owner,
    version_stages,
)

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "DEFAULT_RUNBOOK_URL",
    "AgeReport",
    "SecretAge",
    "check_secret_ages",
    "post_webhook",
    "publish_sns",
    "register",
    "run_age_check",
]

log = structlog.get_logger(__name__)

DEFAULT_MAX_AGE_DAYS = 30.0
DEFAULT_RUNBOOK_URL = "secrets/RUNBOOK.md#secretagedays-over-30"
SECONDS_PER_DAY = 86400.0
WEBHOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SecretAge:
    """When one secret's value in service was written, and whether that is too long ago."""

    name: str
    version_id: str | None
    rotated_at: datetime | None
    age_days: float | None
    overdue: bool
    source: str
    """Where `rotated_at` came from: "version" (AWSCURRENT's CreatedDate) or a fallback."""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version_id": self.version_id,
            "rotated_at": self.rotated_at.isoformat() if self.rotated_at else None,
            "age_days": None if self.age_days is None else round(self.age_days, 2),
            "overdue": self.overdue,
            "source": self.source,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class AgeReport:
    """The age of every checked secret, and which alerts went out."""

    checked_at: datetime
    max_age_days: float
    secrets: tuple[SecretAge, ...]
    notified: tuple[str, ...] = ()
    """Channels the alert was delivered to ("sns", "webhook")."""
    delivery_errors: tuple[str, ...] = field(default=())

    @property
    def overdue(self) -> tuple[SecretAge, ...]:
        return tuple(s for s in self.secrets if s.overdue)

    @property
    def errors(self) -> tuple[SecretAge, ...]:
        return tuple(s for s in self.secrets if s.error is not None)

    @property
    def ok(self) -> bool:
        return not self.overdue and not self.errors and not self.delivery_errors

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "max_age_days": self.max_age_days,
            "ok": self.ok,
            "secrets": [s.to_json() for s in self.secrets],
            "notified": list(self.notified),
            "delivery_errors": list(self.delivery_errors),
        }

    def alert_subject(self, environment: str) -> str:
        parts = []
        if self.overdue:
            parts.append(f"{len(self.overdue)} secret(s) overdue for rotation")
        if self.errors:
            parts.append(f"{len(self.errors)} secret(s) not checked")
        return f"kb-mcp {environment}: " + ", ".join(parts)

    def alert_text(self, runbook_url: str) -> str:
        lines = [
            f"kb-mcp secret rotation policy: rotate at least every {self.max_age_days:g} days.",
        ]
        for s in self.overdue:
            lines.append(
                f"- OVERDUE {s.name}: {s.age_days:.1f} days since the last rotation "
                f"(version {s.version_id}, written {_iso(s.rotated_at)})"
            )
        for s in self.errors:
            lines.append(f"- NOT CHECKED {s.name}: {s.error}")
        lines.append(f"Runbook: {runbook_url}")
        return "\n".join(lines)


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") if moment else "unknown"


async def _list_versions(client: Any, name: str) -> list[dict[str, Any]]:
    versions: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"SecretId": name, "MaxResults": 100}
    while True:
        page = await client.list_secret_version_ids(**kwargs)
        versions.extend(page.get("Versions", []))
        token = page.get("NextToken")
        if not token:
            return versions
        kwargs["NextToken"] = token


async def _secret_age(
    client: Any, settings: Settings, name: str, *, now: datetime, max_age_days: float
) -> SecretAge:
    try:
        # DescribeSecret first: it answers a missing secret with ResourceNotFoundException
        # (moto's ListSecretVersionIds answers it with a 500).
        described = await client.describe_secret(SecretId=name)
        version_id = stage_owner(version_stages(described), AWSCURRENT)
        versions = await _list_versions(client, name) if version_id else []
        current = next((v for v in versions if v.get("VersionId") == version_id), {})
        rotated_at: datetime | None = current.get("CreatedDate")
        source = "version"
        if rotated_at is None:
            rotated_at = described.get("LastRotatedDate") or described.get("CreatedDate")
            source = "last_rotated_date" if described.get("LastRotatedDate") else "created_date"
    except Exception as exc:
        error = aws_error(exc, secret_name=name, settings=settings)
        log.warning(
            "secret.age_unknown", secret=name, error=type(error).__name__, detail=str(error)
        )
        return SecretAge(name, None, None, None, False, "none", f"{type(error).__name__}: {error}")
    if rotated_at is None:
        return SecretAge(name, version_id, None, None, False, "none", "no creation date recorded")
    age_days = max(0.0, (now - rotated_at).total_seconds() / SECONDS_PER_DAY)
    return SecretAge(name, version_id, rotated_at, age_days, age_days > max_age_days, source)


async def check_secret_ages(
    settings: Settings,
    *,
    names: Sequence[str] | None = None,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    now: datetime | None = None,
    metrics: MetricsRegistry | None = None,
) -> AgeReport:
    """Age of each secret (default: every required one) at `now`; sets `SecretAgeDays`."""
    moment = now or datetime.now(UTC)
    registry = metrics if metrics is not None else MetricsRegistry()
    checked = tuple(names) if names else settings.required_secret_names
    async with aws_client(settings, "secretsmanager") as client:
        ages = await asyncio.gather(
            *(
                _secret_age(client, settings, n, now=moment, max_age_days=max_age_days)
                for n in checked
            )
        )
    for age in ages:
        if age.age_days is not None:
            registry.gauge("SecretAgeDays", SecretName=age.name).set(round(age.age_days, 2))
        log.info(
            "secret.age_checked",
            secret=age.name,
            version_id=age.version_id,
            age_days=None if age.age_days is None else round(age.age_days, 2),
            overdue=age.overdue,
            error=age.error,
        )
    return AgeReport(checked_at=moment, max_age_days=max_age_days, secrets=tuple(ages))


async def publish_sns(settings: Settings, topic_arn: str, *, subject: str, message: str) -> str:
    """Publish one message to an SNS topic; its MessageId."""
    async with aws_client(settings, "sns") as sns:
        response = await sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
    return str(response["MessageId"])


def _post_json(url: str, payload: dict[str, Any], timeout_s: float) -> int:
    request = urllib.request.Request(  # noqa: S310 - scheme checked by post_webhook
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        return int(response.status)


async def post_webhook(
    url: str, payload: dict[str, Any], *, timeout_s: float = WEBHOOK_TIMEOUT_S
) -> int:
    """POST `payload` as JSON (Slack's incoming-webhook shape); the HTTP status."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError("webhook url must be http or https")
    return await asyncio.to_thread(_post_json, url, payload, timeout_s)


async def run_age_check(
    settings: Settings,
    *,
    names: Sequence[str] | None = None,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    now: datetime | None = None,
    sns_topic_arn: str | None = None,
    webhook_url: str | None = None,
    runbook_url: str = DEFAULT_RUNBOOK_URL,
    metrics: MetricsRegistry | None = None,
    emf_sink: Callable[[str], None] | None = None,
) -> AgeReport:
    """Check ages, alert when anything is overdue or unchecked, flush `SecretAgeDays`."""
    registry = metrics if metrics is not None else MetricsRegistry()
    report = await check_secret_ages(
        settings, names=names, max_age_days=max_age_days, now=now, metrics=registry
    )
    if emf_sink is not None:
        EmfEmitter(registry, environment=settings.env.value, sink=emf_sink).flush()
    if not report.overdue and not report.errors:
        return report
    subject = report.alert_subject(settings.env.value)
    text = report.alert_text(runbook_url)
    notified: list[str] = []
    failures: list[str] = []
    if sns_topic_arn:
        try:
            message_id = await publish_sns(settings, sns_topic_arn, subject=subject, message=text)
        except Exception as exc:  # reported and turned into the exit code
            failures.append(f"sns: {type(exc).__name__}")
            log.error("secret.age_alert_failed", channel="sns", error=type(exc).__name__)
        else:
            notified.append("sns")
            log.info(
                "secret.age_alert_sent", channel="sns", topic=sns_topic_arn, message_id=message_id
            )
    if webhook_url:
        secret_registry().register(webhook_url)  # the url carries the webhook's token
        payload = {"text": f"*{subject}*\n{text}"}
        try:
            status = await post_webhook(webhook_url, payload)
        except (OSError, ValueError) as exc:
            failures.append(f"webhook: {type(exc).__name__}")
            log.error("secret.age_alert_failed", channel="webhook", error=type(exc).__name__)
        else:
            notified.append("webhook")
            log.info("secret.age_alert_sent", channel="webhook", status=status)
    return AgeReport(
        checked_at=report.checked_at,
        max_age_days=report.max_age_days,
        secrets=report.secrets,
        notified=tuple(notified),
        delivery_errors=tuple(failures),
    )


def _print_report(report: AgeReport) -> None:
    lines = [f"{'secret':<44} {'version':<38} {'last rotated':<18} {'age':>7}  status"]
    for s in report.secrets:
        age = "-" if s.age_days is None else f"{s.age_days:.1f}d"
        status = "ERROR " + (s.error or "") if s.error else ("OVERDUE" if s.overdue else "ok")
        lines.append(
            f"{s.name:<44} {s.version_id or '-':<38} {_iso(s.rotated_at):<18} {age:>7}  {status}"
        )
    sent = ", ".join(report.notified) or "none"
    lines.append(f"limit: {report.max_age_days:g} days; alerts sent: {sent}")
    lines.extend(f"alert delivery failed: {failure}" for failure in report.delivery_errors)
    sys.stdout.write("\n".join(lines) + "\n")


def _as_of(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _webhook_url(variable: str | None) -> str | None:
    if not variable:
        return None
    url = os.environ.get(variable, "").strip()
    if not url:
        raise ValueError(f"environment variable {variable} is empty or unset")
    secret_registry().register(url)  # the url carries the webhook's token
    return url


def _run(args: argparse.Namespace) -> int:
    if args.max_age_days <= 0:
        sys.stderr.write("kb-mcp secrets age: error: --max-age-days must be positive\n")
        return EXIT_USAGE
    try:
        settings = cli_settings(args.env, local_stack="secrets age")
        webhook_url = _webhook_url(args.slack_webhook_url_env)
    except KbMcpError:
        raise
    except ValueError as exc:
        sys.stderr.write(f"kb-mcp secrets age: error: {exc}\n")
        return EXIT_USAGE
    setup_cli_logging(settings)

    def emf_line(line: str) -> None:
        # stdout is the report; metrics are for the log stream (stderr ships too).
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    report = asyncio.run(
        run_age_check(
            settings,
            names=args.secret or None,
            max_age_days=args.max_age_days,
            now=args.as_of,
            sns_topic_arn=args.sns_topic_arn,
            webhook_url=webhook_url,
            runbook_url=args.runbook_url,
            emf_sink=None if args.no_emf else emf_line,
        )
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        _print_report(report)
    return EXIT_OK if report.ok else EXIT_STARTUP_FAILURE


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `age` (the rotation-age policy check)."""
    parser = subparsers.add_parser(
        "age",
        help="flag secrets not rotated within the limit; alert via SNS/webhook",
        description=(
            "Report when each secret's AWSCURRENT version was written, flag those older "
            "than --max-age-days, send one alert (SNS and/or Slack-compatible webhook) with "
            "the runbook link, emit SecretAgeDays as EMF. Exit 1 when any is overdue."
        ),
    )
    parser.add_argument("--env", choices=ENV_CHOICES, help="deployment (default: KB_MCP_ENV)")
    parser.add_argument(
        "--secret", action="append", metavar="NAME", help="check this secret (repeatable)"
    )
    parser.add_argument("--max-age-days", type=float, default=DEFAULT_MAX_AGE_DAYS)
    parser.add_argument("--sns-topic-arn", metavar="ARN", help="publish the alert to this topic")
    parser.add_argument(
        "--slack-webhook-url-env",
        metavar="VAR",
        help="environment variable holding a Slack-compatible webhook url",
    )
    parser.add_argument("--runbook-url", default=DEFAULT_RUNBOOK_URL, help="link in the alert")
    parser.add_argument(
        "--as-of",
        type=_as_of,
        metavar="ISO-TIME",
        help="check as if it were this time, e.g. 2030-01-31T00:00Z (plan ahead)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--no-emf", action="store_true", help="do not print SecretAgeDays EMF (stderr)"
    )
    parser.set_defaults(handler=_run)
