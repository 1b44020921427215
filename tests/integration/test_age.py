"""`kb-mcp secrets age` against moto: overdue secrets flagged, SNS and webhook alerts delivered."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from secretswap.metrics import MetricsRegistry

from kb_mcp.config import Settings, load_settings
from kb_mcp.observability.metrics import parse_emf_line
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops import age
from kb_mcp.ops.age import check_secret_ages, run_age_check
from tests.support.fakes import WATCHED, fake_openai_key, fake_password, postgres_secret_json
from tests.support.processes import base_env, run_kb_mcp

OPENAI_SECRET = "kb-mcp/prod/openai-api-key"
PG_SECRET = "kb-mcp/prod/postgres-credentials"
RUNBOOK = "https://example.invalid/kb-mcp/RUNBOOK.md#secretagedays-over-30"


class _Hook:
    """A Slack-compatible webhook receiver on 127.0.0.1, port 0."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.received = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.received.set()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def webhook() -> Iterator[_Hook]:
    """A local webhook server that records each JSON body it receives."""
    hook = _Hook()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        hook.thread.join(timeout=10)


@dataclass
class AgeEnv:
    settings: Settings
    topic_arn: str
    queue_url: str
    sqs: Any

    async def messages(self) -> list[str]:
        """Every message delivered to the queue subscribed to the alert topic."""
        response = await self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [m["Body"] for m in response.get("Messages", [])]


@pytest.fixture
async def aenv(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AgeEnv]:
    """Both secrets, an alert topic and an SQS queue subscribed to it, all in moto."""
    monkeypatch.setenv("KB_MCP_ENV", "production")
    session = aioboto3.Session()
    async with (
        session.client("secretsmanager", region_name="us-east-1", endpoint_url=aws_env) as sm,
        session.client("sns", region_name="us-east-1", endpoint_url=aws_env) as sns,
        session.client("sqs", region_name="us-east-1", endpoint_url=aws_env) as sqs,
    ):
        await sm.create_secret(Name=OPENAI_SECRET, SecretString=fake_openai_key())
        pg_json = postgres_secret_json(
            username="app", password=fake_password(), host="127.0.0.1", port=5432, database="kb"
        )
        await sm.create_secret(Name=PG_SECRET, SecretString=pg_json)
        topic_arn = (await sns.create_topic(Name="kb-mcp-prod-alerts"))["TopicArn"]
        queue_url = (await sqs.create_queue(QueueName="alerts-readback"))["QueueUrl"]
        attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        await sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=attributes["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        yield AgeEnv(load_settings(), topic_arn, queue_url, sqs)


async def _cli(argv: list[str]) -> int:
    """Run `kb-mcp secrets age ARGV` as the console script does (its own event loop)."""
    parser = argparse.ArgumentParser()
    age.register(parser.add_subparsers(dest="op", required=True))
    args = parser.parse_args(["age", *argv])
    code: int = await asyncio.to_thread(args.handler, args)
    return code


def _no_values(text: str) -> None:
    """No generated value and no value the code registered for masking appears in `text`."""
    values = WATCHED | secret_registry().values()
    assert not [v for v in values if v in text], "a secret value appeared in the output"


async def test_fresh_secrets_pass_and_send_nothing(aenv: AgeEnv, webhook: _Hook) -> None:
    """Secrets written just now are within the limit: no alert, report ok."""
    metrics = MetricsRegistry()
    report = await run_age_check(
        aenv.settings,
        sns_topic_arn=aenv.topic_arn,
        webhook_url=webhook.url,
        runbook_url=RUNBOOK,
        metrics=metrics,
    )
    assert report.ok
    assert [s.name for s in report.secrets] == [OPENAI_SECRET, PG_SECRET]
    assert all(s.age_days is not None and s.age_days < 1 for s in report.secrets)
    assert all(s.source == "version" and s.version_id for s in report.secrets)
    assert report.notified == ()
    assert await aenv.messages() == []
    assert webhook.bodies == []


async def test_overdue_secret_alerts_via_sns_and_webhook(aenv: AgeEnv, webhook: _Hook) -> None:
    """45 days on, both secrets are flagged; the alert is read back from SNS and the webhook."""
    lines: list[str] = []
    now = datetime.now(UTC) + timedelta(days=45)
    report = await run_age_check(
        aenv.settings,
        now=now,
        sns_topic_arn=aenv.topic_arn,
        webhook_url=webhook.url,
        runbook_url=RUNBOOK,
        emf_sink=lines.append,
    )
    assert not report.ok
    assert {s.name for s in report.overdue} == {OPENAI_SECRET, PG_SECRET}
    assert all(44.9 < (s.age_days or 0) < 45.1 for s in report.overdue)
    assert report.notified == ("sns", "webhook")

    messages = await aenv.messages()
    assert len(messages) == 1
    assert OPENAI_SECRET in messages[0]
    assert PG_SECRET in messages[0]
    assert "45.0 days" in messages[0]
    assert RUNBOOK in messages[0]
    _no_values(messages[0])

    assert webhook.received.is_set()
    assert len(webhook.bodies) == 1
    text = webhook.bodies[0]["text"]
    assert "2 secret(s) overdue" in text
    assert RUNBOOK in text
    _no_values(json.dumps(webhook.bodies))

    ages = {}
    for line in lines:
        doc = parse_emf_line(line)
        ages[doc["SecretName"]] = doc["SecretAgeDays"]
    assert set(ages) == {OPENAI_SECRET, PG_SECRET}
    assert all(44.9 < value < 45.1 for value in ages.values())


async def test_cli_exit_codes_and_webhook_from_env(
    aenv: AgeEnv,
    webhook: _Hook,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command exits 0 when fresh, 1 when overdue; the webhook url comes from an env var."""
    monkeypatch.setenv("KB_MCP_TEST_WEBHOOK", webhook.url)
    base = ["--slack-webhook-url-env", "KB_MCP_TEST_WEBHOOK", "--sns-topic-arn", aenv.topic_arn]
    assert await _cli(base) == 0
    out, err = capsys.readouterr()
    assert "SecretAgeDays" in err
    assert "SecretAgeDays" not in out
    assert webhook.bodies == []

    later = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    assert await _cli([*base, "--as-of", later, "--json"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert [s["overdue"] for s in report["secrets"]] == [True, True]
    assert report["notified"] == ["sns", "webhook"]
    assert "SecretAgeDays" in err  # the EMF line, never in the JSON report
    assert len(webhook.bodies) == 1
    assert len(await aenv.messages()) == 1
    _no_values(out + err)
    assert webhook.url not in out + err


async def test_missing_secret_is_an_error_and_alerts(aenv: AgeEnv) -> None:
    """A secret that cannot be read is reported (not silently skipped) and fails the check."""
    report = await run_age_check(
        aenv.settings,
        names=[OPENAI_SECRET, "kb-mcp/prod/missing"],
        sns_topic_arn=aenv.topic_arn,
        runbook_url=RUNBOOK,
    )
    assert not report.ok
    assert [s.name for s in report.errors] == ["kb-mcp/prod/missing"]
    assert "SecretNotFoundError" in (report.errors[0].error or "")
    messages = await aenv.messages()
    assert len(messages) == 1
    assert "NOT CHECKED kb-mcp/prod/missing" in messages[0]


async def test_limit_is_configurable(aenv: AgeEnv) -> None:
    """At 10 days a 7-day limit flags the secrets and the default 30-day limit does not."""
    now = datetime.now(UTC) + timedelta(days=10)
    strict = await check_secret_ages(aenv.settings, now=now, max_age_days=7)
    default = await check_secret_ages(aenv.settings, now=now)
    assert len(strict.overdue) == 2
    assert default.overdue == ()


def test_an_aws_profile_that_does_not_exist_fails_the_command_naming_it(
    tmp_path: Path,
) -> None:
    """The console script: exit 1, the command and the profile named, what to check; no
    traceback (the SDK raises while it builds its session, before any request)."""
    config = tmp_path / "config"
    config.write_text("[profile kb-other]\nregion = us-east-1\n")
    result = run_kb_mcp(
        "secrets",
        "age",
        env=base_env(AWS_PROFILE="kb-missing", AWS_CONFIG_FILE=str(config), AWS_REGION="us-east-1"),
    )
    assert result.returncode == 1
    target, rest = result.stderr.split("\n", 1)
    assert target.startswith("kb-mcp secrets age: Secrets Manager at AWS in us-east-1")
    assert rest.startswith(
        "kb-mcp: secrets age failed: cannot open an aws secretsmanager client: "
        "the config profile (kb-missing) could not be found\n"
    )
    assert "kb-mcp: hint: check AWS_PROFILE" in result.stderr
    assert "Traceback" not in result.stderr
