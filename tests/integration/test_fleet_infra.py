"""The fleet in secrets/terraform: plan-tested with the real terraform and a local AWS
provider (mocked in `terraform test`), and the tamper alerts and the age check's safety
nets checked in the text.

`terraform test` needs the AWS provider's schema, which cannot be downloaded here; it runs
when a local plugin directory holds it (KB_MCP_TF_PLUGIN_DIR, or one of the usual places)
and skips otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "secrets" / "terraform"
PLUGIN_DIRS = [
    os.environ.get("KB_MCP_TF_PLUGIN_DIR", ""),
    # Terraform's implied local mirrors on Linux, then any mirror unpacked under /opt.
    str(Path.home() / ".terraform.d" / "plugins"),
    str(Path.home() / ".local" / "share" / "terraform" / "plugins"),
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    *sorted(str(p) for p in Path("/opt").glob("*") if p.is_dir()),
]
TAMPERING_CALLS = {
    "DeleteSecret",
    "PutSecretValue",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
}


def _tf(name: str) -> str:
    return (TERRAFORM_DIR / name).read_text(encoding="utf-8")


def _block(text: str, kind: str, type_: str, name: str) -> str:
    match = re.search(rf'^{kind} "{type_}" "{name}" \{{\n(.*?)^\}}', text, re.MULTILINE | re.DOTALL)
    assert match, f"{kind} {type_}.{name} missing"
    return match.group(1)


def _plugin_dir() -> str:
    for candidate in PLUGIN_DIRS:
        if candidate and (Path(candidate) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return candidate
    pytest.skip("no local AWS provider for terraform (set KB_MCP_TF_PLUGIN_DIR)")


def _terraform(args: list[str], cwd: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("the terraform binary is not installed on this machine")
    env = {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_DATA_DIR": str(data_dir),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [binary, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_terraform_plan_tests_pass(tmp_path: Path) -> None:
    """`terraform test` (mocked provider; it validates the configuration first) passes: the
    budget refuses an over-budget fleet, a failover region plans, rotation needs a package."""
    plugins = _plugin_dir()
    # A copy with the same layout (the module renders ../../kb_mcp/ops/templates), so no
    # .terraform or lock file lands in the repository.
    module = tmp_path / "secrets" / "terraform"
    shutil.copytree(TERRAFORM_DIR, module, ignore=shutil.ignore_patterns(".terraform*"))
    shutil.copytree(
        REPO / "kb_mcp" / "ops" / "templates", tmp_path / "kb_mcp" / "ops" / "templates"
    )
    data = tmp_path / "tfdata"
    init = _terraform(
        ["init", "-backend=false", "-input=false", f"-plugin-dir={plugins}"], module, data
    )
    assert init.returncode == 0, init.stdout + init.stderr
    test = _terraform(["test", "-no-color"], module, data)
    assert test.returncode == 0, test.stdout + test.stderr
    assert re.search(r"Success! (\d+) passed, 0 failed", test.stdout), test.stdout
    assert 'run "an_over_budget_fleet_is_refused_at_plan_time"... pass' in test.stdout


def test_the_plan_enforces_the_connection_budget_with_the_numbers_in_its_message() -> None:
    """A precondition compares tasks x pool x deployment + reserve with max_connections and
    its message names each number; the pool size is set in the task definition."""
    fleet = _tf("fleet.tf")
    budget = _block(fleet, "resource", "terraform_data", "connection_budget")
    assert "precondition" in budget
    for name in (
        "autoscaling_max_tasks",
        "deployment_maximum_percent",
        "db_pool_max_size",
        "db_reserved_connections",
        "db_max_connections",
    ):
        assert f"{name} ${{var.{name}}}" in budget, name
    assert '"KB_MCP_DB_POOL_MAX_SIZE", value = tostring(var.db_pool_max_size)' in _tf("ecs.tf")
    target = _block(fleet, "resource", "aws_appautoscaling_target", "service")
    assert "max_capacity       = var.autoscaling_max_tasks" in target
    assert "min_capacity       = var.task_count" in target
    assert "ECSServiceAverageCPUUtilization" in fleet
    service = _block(_tf("ecs.tf"), "resource", "aws_ecs_service", "server")
    assert "ignore_changes = [desired_count]" in service
    assert "deployment_maximum_percent         = var.deployment_maximum_percent" in service


def test_tamper_rules_send_the_call_the_secret_the_principal_and_the_runbook_url() -> None:
    """EventBridge rules on the protecting calls and on reads by unexpected principals
    publish to the alerts topic a message naming call, secret, principal and runbook URL."""
    tamper = _tf("tamper.tf")
    calls = set(re.findall(r'^\s+"(\w+)",$', tamper, re.MULTILINE))
    assert calls >= TAMPERING_CALLS
    reader = _block(tamper, "resource", "aws_cloudwatch_event_rule", "unexpected_reader")
    assert 'state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"' in reader
    assert '"GetSecretValue"' in reader
    assert '"anything-but"' in reader
    for target in ("secret_tampering", "unexpected_reader"):
        body = _block(tamper, "resource", "aws_cloudwatch_event_target", target)
        assert "arn  = aws_sns_topic.alerts.arn" in body
        template = re.search(r"input_template = (.+)$", body, re.MULTILINE)
        assert template, target
        for field in ("<call>", "<secret>", "<principal>", "${var.runbook_url}"):
            assert field in template.group(1), (target, field)
    assert "events.amazonaws.com" in _block(
        _tf("kms.tf"), "data", "aws_iam_policy_document", "kms_tamper"
    )
    assert 'resource "aws_cloudtrail" "secrets"' in tamper


def test_the_age_check_cannot_fail_silently() -> None:
    """Retries and a dead-letter queue on the schedule, alarms on failed starts and dead
    letters, missing age data breaching, and every alarm linking the runbook by URL."""
    schedule_tf = _tf("schedule.tf")
    schedule = _block(schedule_tf, "resource", "aws_scheduler_schedule", "age_check")
    assert "arn = aws_sqs_queue.age_check_dlq.arn" in schedule
    assert "maximum_event_age_in_seconds" in schedule
    failed = _block(
        schedule_tf, "resource", "aws_cloudwatch_metric_alarm", "age_check_failed_invocations"
    )
    assert '"AWS/Scheduler"' in failed
    assert '"TargetErrorCount"' in failed
    dead = _block(schedule_tf, "resource", "aws_cloudwatch_metric_alarm", "age_check_dead_letters")
    assert "ApproximateNumberOfMessagesVisible" in dead
    age = _block(_tf("alerts.tf"), "resource", "aws_cloudwatch_metric_alarm", "secret_age")
    assert 'treat_missing_data = "breaching"' in age
    for text in (_tf("alerts.tf"), schedule_tf):
        for description in re.findall(r"alarm_description\s*=\s*(.+)$", text, re.MULTILINE):
            if "Billing" in description or "billing" in description:
                continue
            assert "${var.runbook_url}#" in description, description
            assert "RUNBOOK.md:" not in description


def test_the_rotation_function_has_exactly_the_calls_the_handler_makes() -> None:
    """The function's role may call on the PostgreSQL secret exactly what the four steps call,
    and read the master secret; a 30-day (var.rotation_days) schedule turns it on."""
    rotation = _tf("rotation.tf")
    policy = _block(rotation, "data", "aws_iam_policy_document", "rotation")
    granted = set(re.findall(r'"secretsmanager:(\w+)"', policy))
    source = "".join(
        (REPO / "kb_mcp" / "ops" / "rotation" / name).read_text(encoding="utf-8")
        for name in ("steps.py", "lambda_handler.py")
    )
    methods = re.findall(r'client\.(\w+)\(|_call\(\s*"(\w+)"', source)
    called = {
        "".join(part.capitalize() for part in name.split("_"))
        for pair in methods
        for name in pair
        if name
    }
    expected = {"DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage"}
    assert called == expected
    assert granted == expected
    rule = _block(rotation, "resource", "aws_secretsmanager_secret_rotation", "postgres")
    assert "automatically_after_days = var.rotation_days" in rule
    variables = _tf("variables.tf")
    days = re.search(r'variable "rotation_days" \{.*?default\s*=\s*(\d+)', variables, re.DOTALL)
    assert days
    assert days.group(1) == "30"
    assert re.search(r'handler\s+= "kb_mcp\.ops\.rotation\.lambda_handler\.handler"', rotation)
