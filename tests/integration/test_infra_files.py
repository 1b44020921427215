"""The infrastructure files in secrets/: Terraform, the ECS task definition, the IAM policy.

Terraform cannot be validated here (no providers), so its text is checked: formatting with
the real `terraform fmt`, the policy template with the real `terraform console`, and the
alarms and service settings by parsing the blocks.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kb_mcp.ops.policy import (
    TASK_TEMPLATE,
    lint_policy,
    render_task_policy,
    render_template,
    template_file,
)
from kb_mcp.ops.resource_policy import (
    RESOURCE_TEMPLATE,
    lint_resource_policy,
    render_resource_policy,
)
from kb_mcp.ops.tftemplate import TemplateValue

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "secrets" / "terraform"
TASK_DEFINITION = REPO / "secrets" / "ecs" / "task-definition.json"

DRAIN_TIMEOUT_S = 30  # KB_MCP_DRAIN_TIMEOUT_S default
SECRET_NAME_RE = re.compile(
    r"PASSWORD|PASSWD|SECRET_KEY|ACCESS_KEY|API_KEY|PRIVATE_KEY|SESSION_TOKEN|"
    r"AUTH_TOKEN$|CREDENTIALS?$|DSN$|DATABASE_URL|CONNECTION_STRING",
    re.IGNORECASE,
)
SECRET_VALUE_RE = re.compile(
    r"sk-[A-Za-z0-9_-]{10,}|AKIA[0-9A-Z]{16}|postgres(?:ql)?://|-----BEGIN|password=",
    re.IGNORECASE,
)


def _tf(name: str) -> str:
    return (TERRAFORM_DIR / name).read_text(encoding="utf-8")


def _all_tf() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in TERRAFORM_DIR.glob("*.tf"))


def _blocks(text: str, kind: str, type_: str) -> dict[str, str]:
    """`resource "type" "name" { ... }` bodies by name (top-level blocks end at a bare `}`)."""
    pattern = re.compile(rf'^{kind} "{type_}" "([\w-]+)" \{{\n(.*?)^\}}', re.MULTILINE | re.DOTALL)
    return {match.group(1): match.group(2) for match in pattern.finditer(text)}


def _attr(body: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s*=\s*(.+)$", body, re.MULTILINE)
    assert match, f"attribute {name} missing"
    return match.group(1).strip().strip('"')


def _variable_default(name: str) -> str:
    block = re.search(
        rf'^variable "{name}" \{{\n(.*?)^\}}', _tf("variables.tf"), re.MULTILINE | re.DOTALL
    )
    assert block, f"variable {name} missing"
    return _attr(block.group(1), "default")


def _task_template_reference() -> tuple[Path, set[str]]:
    """The task policy template path iam.tf renders, and the variable names it passes."""
    templates_dir = re.search(
        r'policy_templates\s*=\s*"\$\{path\.module\}/([^"]+)"', _tf("main.tf")
    )
    assert templates_dir, "main.tf defines no policy_templates path under path.module"
    body = _blocks(_tf("iam.tf"), "resource", "aws_iam_role_policy")["task_secrets"]
    call = re.search(
        r'templatefile\("\$\{local\.policy_templates\}/([^"]+)",\s*\{(.*?)\}\)', body, re.DOTALL
    )
    assert call, "the task role policy is not rendered with templatefile()"
    names = set(re.findall(r"^\s*(\w+)\s*=", call.group(2), re.MULTILINE))
    return (TERRAFORM_DIR / templates_dir.group(1) / call.group(1)).resolve(), names


def test_terraform_task_policy_is_the_python_template() -> None:
    """iam.tf renders the packaged template with exactly the variables Python passes."""
    path, names = _task_template_reference()
    assert path.is_file()
    assert path.samefile(Path(str(template_file(TASK_TEMPLATE))))
    assert names == {"account", "region", "env", "auth_token_secret", "replica_regions"}
    text = path.read_text(encoding="utf-8")
    for with_token in (False, True):
        for replicas in ([], ["eu-west-1", "us-west-2"]):
            variables = {
                "account": "123456789012",
                "region": "eu-central-1",
                "env": "staging",
                "auth_token_secret": with_token,
                "replica_regions": replicas,
            }
            assert lint_policy(json.loads(render_template(text, variables))) == []


def _terraform() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("the terraform binary is not installed on this machine")
    return binary


def _terraform_env() -> dict[str, str]:
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}


def test_terraform_fmt_is_clean() -> None:
    """`terraform fmt -check -recursive` finds nothing to reformat in secrets/terraform."""
    result = subprocess.run(
        [_terraform(), "fmt", "-check", "-recursive", "-diff"],
        cwd=TERRAFORM_DIR,
        env=_terraform_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


RENDER_CASES = [
    (token, replicas) for token in (False, True) for replicas in ((), ("us-west-2", "eu-west-1"))
]


def test_terraform_renders_the_template_byte_for_byte_like_python(tmp_path: Path) -> None:
    """Terraform's templatefile() equals render_template(): token or not, replicas or not."""
    path, _ = _task_template_reference()
    base = {"account": "123456789012", "region": "us-east-1", "env": "prod"}
    hcl_vars = ", ".join(f'{key} = "{value}"' for key, value in base.items())

    def hcl_list(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    renders = ", ".join(
        f'base64encode(templatefile("{path.as_posix()}", '
        f"{{ {hcl_vars}, auth_token_secret = {str(token).lower()}, "
        f"replica_regions = {hcl_list(replicas)} }}))"
        for token, replicas in RENDER_CASES
    )
    # A piped console prints only its last result: one expression joining every render.
    result = subprocess.run(
        [_terraform(), "console"],
        input=f'join(",", [{renders}])\n',
        cwd=tmp_path,
        env=_terraform_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r'^"([A-Za-z0-9+/=,]+)"$', result.stdout, re.MULTILINE)
    assert match, result.stdout
    text = path.read_text(encoding="utf-8")
    values = match.group(1).split(",")
    for (token, replicas), value in zip(RENDER_CASES, values, strict=True):
        variables: dict[str, TemplateValue] = {
            **base,
            "auth_token_secret": token,
            "replica_regions": list(replicas),
        }
        expected = render_template(text, variables)
        assert base64.b64decode(value).decode("utf-8") == expected
        # ...and is what `kb-mcp secrets policy` prints for the same deployment.
        assert json.loads(expected) == render_task_policy(
            account=base["account"],
            region=base["region"],
            env=base["env"],
            auth_token_secret=token,
            replica_regions=replicas,
        )


def _alarms() -> dict[str, str]:
    """Alarm bodies keyed by metric name."""
    bodies = _blocks(_tf("alerts.tf"), "resource", "aws_cloudwatch_metric_alarm")
    return {_attr(body, "metric_name"): body for body in bodies.values()}


def test_alarms_exist_for_each_required_metric() -> None:
    """RotationFailures, SecretAgeDays, RefreshErrors and the billing alarm are defined."""
    alarms = _alarms()
    assert {"RotationFailures", "SecretAgeDays", "RefreshErrors", "EstimatedCharges"} <= set(alarms)
    main = _tf("main.tf")
    assert re.search(r'metric_namespace\s*=\s*"KbMcp"', main)
    assert re.search(r'Service\s*=\s*"kb-mcp"', main)
    for metric in ("RotationFailures", "SecretAgeDays", "RefreshErrors"):
        body = alarms[metric]
        assert _attr(body, "namespace") == "local.metric_namespace"
        assert _attr(body, "dimensions") == "local.metric_dimensions"
        assert "alarm_actions" in body


def test_alarm_thresholds_match_the_policy() -> None:
    """Any rotation failure; age over 30 days; refresh errors in 3 of 3 periods; $5 billing."""
    alarms = _alarms()
    rotation = alarms["RotationFailures"]
    assert (_attr(rotation, "statistic"), _attr(rotation, "threshold")) == ("Sum", "1")
    assert _attr(rotation, "comparison_operator") == "GreaterThanOrEqualToThreshold"
    assert _attr(rotation, "period") == "300"

    age = alarms["SecretAgeDays"]
    assert _attr(age, "statistic") == "Maximum"
    assert _attr(age, "comparison_operator") == "GreaterThanThreshold"
    assert _attr(age, "threshold") == "var.secret_age_days_threshold"
    assert _variable_default("secret_age_days_threshold") == "30"

    refresh = alarms["RefreshErrors"]
    assert _attr(refresh, "evaluation_periods") == "3"
    assert _attr(refresh, "datapoints_to_alarm") == "3"

    billing = alarms["EstimatedCharges"]
    assert _attr(billing, "provider") == "aws.us_east_1"
    assert _attr(billing, "namespace") == "AWS/Billing"
    assert re.search(r'ServiceName\s*=\s*"AWSSecretsManager"', billing)
    assert _attr(billing, "threshold") == "var.billing_threshold_usd"
    assert _variable_default("billing_threshold_usd") == "5"


def test_terraform_service_sits_behind_readyz_target_group() -> None:
    """The target group is ip-typed, checks /readyz, and deregisters slower than the drain."""
    ecs = _tf("ecs.tf")
    group = _blocks(ecs, "resource", "aws_lb_target_group")["server"]
    assert _attr(group, "target_type") == "ip"
    assert _attr(group, "path") == "/readyz"
    assert _attr(group, "deregistration_delay") == "var.deregistration_delay_s"
    assert int(_variable_default("deregistration_delay_s")) > int(
        _variable_default("drain_timeout_s")
    )
    service = _blocks(ecs, "resource", "aws_ecs_service")["server"]
    assert _attr(service, "desired_count") == "var.task_count"
    assert _attr(service, "subnets") == "var.subnets"
    assert re.search(r"^\s*secrets\s*=", ecs, re.MULTILINE) is None


def test_terraform_secrets_use_aws_managed_key_and_never_hold_values() -> None:
    """Secrets have no kms_key_id and Terraform writes no secret version (no state leak)."""
    text = _all_tf()
    secrets_ = _blocks(_tf("secrets.tf"), "resource", "aws_secretsmanager_secret")
    assert {"openai", "postgres", "auth_token"} <= set(secrets_)
    assert all("kms_key_id" not in body for body in secrets_.values())
    assert "aws_secretsmanager_secret_version" not in text
    assert "secret_string" not in text


def test_terraform_has_the_required_variables() -> None:
    """The module takes environment, region, cluster, subnets, task count and the rest."""
    declared = set(re.findall(r'^variable "(\w+)"', _tf("variables.tf"), re.MULTILINE))
    assert {
        "environment",
        "region",
        "cluster",
        "subnets",
        "vpc_id",
        "task_count",
        "image",
        "alert_email",
        "cache_ttl_seconds",
    } <= declared


def _task_definition() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(TASK_DEFINITION.read_text(encoding="utf-8"))
    return document


def _container() -> dict[str, Any]:
    (container,) = _task_definition()["containerDefinitions"]
    assert isinstance(container, dict)
    return container


def test_task_definition_carries_no_secrets() -> None:
    """No `secrets` field and no secret-looking environment variable name or value."""
    document = _task_definition()
    container = _container()
    assert "secrets" not in container
    assert "secrets" not in document
    for variable in container["environment"]:
        assert not SECRET_NAME_RE.search(variable["name"]), variable["name"]
        assert not SECRET_VALUE_RE.search(variable["value"]), variable["name"]
    assert not SECRET_VALUE_RE.search(TASK_DEFINITION.read_text(encoding="utf-8"))


def test_task_definition_runs_production_with_task_role() -> None:
    """KB_MCP_ENV=production, a task role and an execution role, Fargate, port 8080."""
    document = _task_definition()
    container = _container()
    environment = {item["name"]: item["value"] for item in container["environment"]}
    assert environment["KB_MCP_ENV"] == "production"
    assert {"AWS_REGION", "SECRETS_CACHE_TTL_SECONDS", "KB_MCP_DRAIN_TIMEOUT_S"} <= set(environment)
    assert document["taskRoleArn"].startswith("arn:aws:iam::")
    assert document["executionRoleArn"] != document["taskRoleArn"]
    assert document["requiresCompatibilities"] == ["FARGATE"]
    assert container["portMappings"][0]["containerPort"] == 8080
    assert container["command"][:2] == ["kb-mcp", "serve"]


def test_task_definition_health_check_and_shutdown() -> None:
    """/healthz probed with python, stopTimeout beyond the drain timeout, awslogs, non-root."""
    container = _container()
    command = container["healthCheck"]["command"]
    assert command[:3] == ["CMD", "python", "-c"]
    assert "/healthz" in command[3]
    compile(command[3], "<healthcheck>", "exec")
    environment = {item["name"]: item["value"] for item in container["environment"]}
    drain = int(environment.get("KB_MCP_DRAIN_TIMEOUT_S", DRAIN_TIMEOUT_S))
    assert container["stopTimeout"] > drain
    assert container["stopTimeout"] <= 120
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert container["user"].split(":")[0] not in {"0", "root"}
    assert container["readonlyRootFilesystem"] is True
    mounts = {mount["containerPath"] for mount in container["mountPoints"]}
    assert "/tmp" in mounts


def _iam_actions(python_method: str) -> str:
    """`list_secret_version_ids` -> `ListSecretVersionIds`."""
    return "".join(part.capitalize() for part in python_method.split("_"))


def test_secrets_replicate_and_are_protected_from_deletion() -> None:
    """Each secret: replica blocks from var.replica_regions, prevent_destroy, recovery window,
    and the deletion-protection resource policy rendered from the packaged template."""
    secrets_tf = _tf("secrets.tf")
    bodies = _blocks(secrets_tf, "resource", "aws_secretsmanager_secret")
    for name, body in bodies.items():
        assert 'dynamic "replica"' in body, name
        assert "for_each = var.replica_regions" in body, name
        assert re.search(r"prevent_destroy\s*=\s*true", body), name
        assert _attr(body, "recovery_window_in_days") == "var.recovery_window_days", name
    assert _variable_default("recovery_window_days") == "30"
    policy = _blocks(secrets_tf, "resource", "aws_secretsmanager_secret_policy")["protect"]
    assert _attr(policy, "for_each") == "local.is_primary ? local.protected_secret_arns : {}"
    assert _attr(policy, "block_public_policy") == "true"
    assert "secret-resource-policy.json.tftpl" in secrets_tf
    assert (
        TERRAFORM_DIR / "../../kb_mcp/ops/templates/secret-resource-policy.json.tftpl"
    ).is_file()


def test_terraform_renders_the_resource_policy_like_python(tmp_path: Path) -> None:
    """Terraform's templatefile() of the resource policy equals Python's, which lints clean."""
    role = "arn:aws:iam::123456789012:role/kb-mcp-prod-operator"
    readers = ["arn:aws:iam::123456789012:role/kb-mcp-prod-task"]
    writers = ["arn:aws:iam::123456789012:role/kb-mcp-prod-rotate-postgres"]
    path = Path(str(template_file(RESOURCE_TEMPLATE)))
    hcl = (
        f'operator_role_arn = "{role}", reader_role_arns = {json.dumps(readers + writers)}, '
        f"writer_role_arns = {json.dumps(writers)}"
    )
    result = subprocess.run(
        [_terraform(), "console"],
        input=f'base64encode(templatefile("{path.as_posix()}", {{ {hcl} }}))\n',
        cwd=tmp_path,
        env=_terraform_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r'^"([A-Za-z0-9+/=]+)"$', result.stdout, re.MULTILINE)
    assert match, result.stdout
    rendered = base64.b64decode(match.group(1)).decode("utf-8")
    text = path.read_text(encoding="utf-8")
    variables: dict[str, TemplateValue] = {
        "operator_role_arn": role,
        "reader_role_arns": readers + writers,
        "writer_role_arns": writers,
    }
    assert rendered == render_template(text, variables)
    policy = json.loads(rendered)
    assert policy == render_resource_policy(
        operator_role_arn=role, reader_role_arns=readers + writers, writer_role_arns=writers
    )
    assert lint_resource_policy(policy) == []


def test_the_age_check_runs_on_a_schedule_with_its_own_least_privilege_role() -> None:
    """Scheduler runs the task definition with `kb-mcp secrets age`, under a role allowed
    exactly the calls age.py makes (plus the topic's key), and the alarm watches its metric."""
    schedule_tf = _tf("schedule.tf")
    schedule = _blocks(schedule_tf, "resource", "aws_scheduler_schedule")["age_check"]
    assert _attr(schedule, "schedule_expression") == "var.age_check_schedule"
    assert "task_definition_arn = aws_ecs_task_definition.server.arn" in schedule
    assert re.search(r'command\s*=\s*\["kb-mcp", "secrets", "age", "--sns-topic-arn"', schedule)
    assert "taskRoleArn = aws_iam_role.age_check.arn" in schedule

    role_policy = _blocks(schedule_tf, "data", "aws_iam_policy_document")["age_check"]
    granted = set(re.findall(r'"((?:secretsmanager|sns|kms):\w+)"', role_policy))
    age_source = (REPO / "kb_mcp" / "ops" / "age.py").read_text(encoding="utf-8")
    called = {
        f"secretsmanager:{_iam_actions(m)}" for m in re.findall(r"client\.(\w+)\(", age_source)
    }
    called |= {f"sns:{_iam_actions(m)}" for m in re.findall(r"sns\.(\w+)\(", age_source)}
    assert called == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
        "sns:Publish",
    }
    # The alerts topic is encrypted: publishing needs its key, nothing else is granted.
    assert granted == called | {"kms:Decrypt", "kms:GenerateDataKey"}
    assert "resources = [aws_sns_topic.alerts.arn]" in role_policy
    assert "SecretAgeDays" in _alarms()


def test_logs_and_topics_are_encrypted_and_kept_a_year() -> None:
    """The log group and both topics use the module's KMS key; retention defaults to 365."""
    log_group = _blocks(_tf("ecs.tf"), "resource", "aws_cloudwatch_log_group")["service"]
    assert _attr(log_group, "kms_key_id") == "local.kms_key_arn"
    assert _attr(log_group, "retention_in_days") == "var.log_retention_days"
    assert _variable_default("log_retention_days") == "365"
    topics = _blocks(_tf("alerts.tf"), "resource", "aws_sns_topic")
    assert _attr(topics["alerts"], "kms_master_key_id") == "local.kms_key_arn"
    assert _attr(topics["billing_alerts"], "kms_master_key_id") == "local.billing_kms_key_arn"
    key = _blocks(_tf("kms.tf"), "resource", "aws_kms_key")["this"]
    assert _attr(key, "enable_key_rotation") == "true"
