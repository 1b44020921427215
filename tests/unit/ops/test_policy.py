"""The IAM policy generator and linter behind `kb-mcp secrets policy`."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kb_mcp.ops.policy import (
    ENVIRONMENTS,
    TASK_ACTION,
    PolicyFinding,
    lint_operator_policy,
    lint_policy,
    register,
    render_operator_policy,
    render_task_policy,
    render_template,
)

REPO = Path(__file__).resolve().parents[3]
IAM_DIR = REPO / "secrets" / "iam"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def _prod_policy() -> dict[str, Any]:
    return render_task_policy(account=ACCOUNT, region=REGION, env="prod")


def _codes(findings: list[PolicyFinding]) -> set[str]:
    return {finding.code for finding in findings}


def _with_statement(**changes: Any) -> dict[str, Any]:
    policy = copy.deepcopy(_prod_policy())
    policy["Statement"][0].update(changes)
    return policy


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("auth_token_secret", [False, True])
def test_rendered_policy_passes_lint(env: str, auth_token_secret: bool) -> None:
    """Every environment's task policy, with or without the token secret, has no finding."""
    policy = render_task_policy(
        account=ACCOUNT, region="eu-west-1", env=env, auth_token_secret=auth_token_secret
    )
    assert lint_policy(policy) == []


def test_rendered_policy_allows_only_get_secret_value_on_named_secrets() -> None:
    """One statement, one action, and exactly the environment's secret ARNs with -??????."""
    policy = render_task_policy(account=ACCOUNT, region=REGION, env="staging")
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == TASK_ACTION
    prefix = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kb-mcp/staging/"
    assert statement["Resource"] == [
        f"{prefix}openai-api-key-??????",
        f"{prefix}postgres-credentials-??????",
    ]


@pytest.mark.parametrize("auth_token_secret", [False, True])
def test_replica_regions_add_the_same_secrets_in_each_region(auth_token_secret: bool) -> None:
    """--replica-regions: the same ARNs in each replica region, still one action, lint clean."""
    replicas = ("us-west-2", "eu-west-1")
    policy = render_task_policy(
        account=ACCOUNT,
        region=REGION,
        env="prod",
        auth_token_secret=auth_token_secret,
        replica_regions=replicas,
    )
    assert lint_policy(policy) == []
    (statement,) = policy["Statement"]
    assert statement["Action"] == TASK_ACTION
    primary = render_task_policy(
        account=ACCOUNT, region=REGION, env="prod", auth_token_secret=auth_token_secret
    )["Statement"][0]["Resource"]
    expected = [*primary]
    for replica in replicas:
        expected += [arn.replace(f":{REGION}:", f":{replica}:") for arn in primary]
    assert statement["Resource"] == expected


@pytest.mark.parametrize(
    ("replicas", "needle"),
    [
        (["us-east-1"], "must not include the primary"),
        (["us-west-2", "us-west-2"], "distinct"),
        (["mars-1"], "not an aws region"),
        (["cn-north-1"], "standard partition"),
    ],
)
def test_bad_replica_regions_are_refused(replicas: list[str], needle: str) -> None:
    """A replica equal to the primary, listed twice, or not a standard region: ValueError."""
    with pytest.raises(ValueError, match=needle):
        render_task_policy(account=ACCOUNT, region=REGION, env="prod", replica_regions=replicas)


def test_cli_replica_regions_prints_a_policy_that_passes_parliament(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`policy --replica-regions us-west-2,eu-west-1 --check` exits 0 with the replica ARNs."""
    argv = ["policy", "--account", ACCOUNT, "--region", REGION, "--env", "prod"]
    assert _run_cli([*argv, "--replica-regions", "us-west-2,eu-west-1", "--check"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == render_task_policy(
        account=ACCOUNT, region=REGION, env="prod", replica_regions=["us-west-2", "eu-west-1"]
    )
    assert out.err == "kb-mcp secrets policy: check passed: the task policy has no findings\n"


def test_auth_token_secret_adds_third_resource() -> None:
    """--with-auth-token adds exactly the mcp-auth-token secret and nothing else."""
    without = render_task_policy(account=ACCOUNT, region=REGION, env="prod")
    with_token = render_task_policy(
        account=ACCOUNT, region=REGION, env="prod", auth_token_secret=True
    )
    added = set(with_token["Statement"][0]["Resource"]) - set(without["Statement"][0]["Resource"])
    assert added == {
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kb-mcp/prod/mcp-auth-token-??????"
    }


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"Action": "secretsmanager:*"}, "WILDCARD_ACTION"),
        ({"Action": "secretsmanager:Get*"}, "WILDCARD_ACTION"),
        ({"Resource": "*"}, "RESOURCE_STAR"),
        ({"Action": [TASK_ACTION, "secretsmanager:DescribeSecret"]}, "EXTRA_ACTION"),
        ({"Effect": "Deny"}, "EFFECT_NOT_ALLOW"),
        (
            {"Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:*"},
            "RESOURCE_NOT_SCOPED",
        ),
        (
            {"Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kb-mcp/prod"},
            "RESOURCE_NOT_SCOPED",
        ),
        ({"Resource": "arn:aws:s3:::bucket/key"}, "RESOURCE_NOT_SCOPED"),
    ],
)
def test_overbroad_policy_fails_with_right_finding(changes: dict[str, Any], code: str) -> None:
    """A wildcard, an extra action, Deny or an unscoped resource yields its finding code."""
    findings = lint_policy(_with_statement(**changes))
    assert code in _codes(findings)
    assert all(finding.severity for finding in findings)


def test_not_resource_fails_in_structure_and_parliament() -> None:
    """NotResource is flagged by our check and by parliament's community auditor."""
    policy = copy.deepcopy(_prod_policy())
    statement = policy["Statement"][0]
    statement["NotResource"] = statement.pop("Resource")
    codes = _codes(lint_policy(policy))
    assert {"NOT_RESOURCE", "parliament:NOTRESOURCE_WITH_ALLOW"} <= codes


def test_not_action_fails() -> None:
    """NotAction (allow everything except) is refused."""
    policy = copy.deepcopy(_prod_policy())
    statement = policy["Statement"][0]
    statement["NotAction"] = statement.pop("Action")
    assert "NOT_ACTION" in _codes(lint_policy(policy))


def test_resource_star_is_also_a_parliament_finding() -> None:
    """parliament itself (not only our structure check) flags Resource "*"."""
    codes = _codes(lint_policy(_with_statement(Resource="*")))
    assert "parliament:RESOURCE_STAR" in codes


def test_unknown_action_is_a_parliament_finding() -> None:
    """A misspelt action is caught by parliament's IAM database."""
    codes = _codes(lint_policy(_with_statement(Action="secretsmanager:GetSecretValu")))
    assert "parliament:UNKNOWN_ACTION" in codes


def test_malformed_policy_is_a_finding_not_a_crash() -> None:
    """A document without Statement is reported as malformed, by us and by parliament."""
    codes = _codes(lint_policy({"Version": "2012-10-17"}))
    assert codes == {"MALFORMED_POLICY", "parliament:MALFORMED"}


def test_checked_in_task_example_equals_generator_output() -> None:
    """secrets/iam/task-role-policy.example.json is exactly what the generator prints."""
    text = (IAM_DIR / "task-role-policy.example.json").read_text(encoding="utf-8")
    assert text == json.dumps(_prod_policy(), indent=2) + "\n"


def test_checked_in_operator_policy_equals_generator_output_and_lints_clean() -> None:
    """secrets/iam/operator-rotation-policy.json is the rendered template, with no finding."""
    text = (IAM_DIR / "operator-rotation-policy.json").read_text(encoding="utf-8")
    policy = render_operator_policy(account=ACCOUNT, region=REGION, env="prod")
    assert text == json.dumps(policy, indent=2) + "\n"
    assert lint_operator_policy(policy) == []


def test_operator_policy_grants_exactly_the_tooling_actions() -> None:
    """The operator policy holds the rotate/age/seed actions and sns:Publish, nothing more."""
    policy = render_operator_policy(account=ACCOUNT, region=REGION, env="dev")
    actions: set[str] = set()
    for statement in policy["Statement"]:
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    assert actions == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:CreateSecret",
        "sns:Publish",
    }
    lint_failures = lint_operator_policy(
        {**policy, "Statement": [*policy["Statement"], {"Effect": "Allow", "Action": "*"}]}
    )
    assert {"WILDCARD_ACTION", "MISSING_RESOURCE"} <= _codes(lint_failures)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"account": "12345678901"}, "12-digit"),
        ({"account": "12345678901a"}, "12-digit"),
        ({"region": "US-EAST-1"}, "region"),
        ({"region": "us-east"}, "region"),
        ({"region": "cn-north-1"}, "standard partition"),
        ({"region": "us-gov-west-1"}, "standard partition"),
        ({"env": "production"}, "dev, staging, prod"),
        ({"env": "qa"}, "dev, staging, prod"),
    ],
)
def test_bad_inputs_raise_value_error(kwargs: dict[str, str], needle: str) -> None:
    """An invalid account, region or env raises ValueError naming the problem."""
    arguments = {"account": ACCOUNT, "region": REGION, "env": "prod", **kwargs}
    with pytest.raises(ValueError, match=needle):
        render_task_policy(
            account=arguments["account"], region=arguments["region"], env=arguments["env"]
        )


def test_template_renderer_matches_terraform_directives() -> None:
    """`%{ if }` keeps or drops its body verbatim; `${x}` interpolates; others are refused."""
    text = 'a%{ if on }, "b"%{ endif } ${name}'
    assert render_template(text, {"on": True, "name": "n"}) == 'a, "b" n'
    assert render_template(text, {"on": False, "name": "n"}) == "a n"
    loop = '[%{ for x in xs }"${x}"%{ if on },%{ endif }%{ endfor }]'
    assert render_template(loop, {"xs": ["a", "b"], "on": True}) == '["a","b",]'
    assert render_template(loop, {"xs": [], "on": True}) == "[]"
    with pytest.raises(TypeError, match="list of strings"):
        render_template(loop, {"xs": "a", "on": True})
    with pytest.raises(ValueError, match="beyond"):
        render_template("%{ for x in xs }%{ for y in xs }${y}%{ endfor }%{ endfor }", {"xs": []})
    with pytest.raises(ValueError, match="beyond"):
        render_template("a%{ if on ~}b%{ endif ~}", {"on": True})
    with pytest.raises(ValueError, match="beyond"):
        render_template("%{ if on }a%{ else }b%{ endif }", {"on": False})
    with pytest.raises(ValueError, match="not given"):
        render_template("${missing}", {})


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kb-mcp secrets")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_cli_prints_valid_policy_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy --account --region --env --with-auth-token` prints the rendered policy as JSON."""
    argv = ["policy", "--account", ACCOUNT, "--region", REGION, "--env", "prod"]
    assert _run_cli([*argv, "--with-auth-token", "--check"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == render_task_policy(
        account=ACCOUNT, region=REGION, env="prod", auth_token_secret=True
    )
    assert out.err == "kb-mcp secrets policy: check passed: the task policy has no findings\n"


def test_cli_operator_kind_prints_operator_policy(capsys: pytest.CaptureFixture[str]) -> None:
    """`--kind operator --check` prints the operator policy and exits 0."""
    argv = ["policy", "--kind", "operator", "--account", ACCOUNT, "--region", REGION]
    assert _run_cli([*argv, "--env", "staging", "--check"]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert policy == render_operator_policy(account=ACCOUNT, region=REGION, env="staging")


def test_cli_bad_account_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed account is a usage error: exit 2, a message on stderr, nothing on stdout."""
    assert _run_cli(["policy", "--account", "42", "--region", REGION, "--env", "dev"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "12-digit" in out.err


def test_cli_rejects_unknown_env() -> None:
    """--env outside the names every command takes is refused by argparse (exit 2)."""
    with pytest.raises(SystemExit) as exc_info:
        _run_cli(["policy", "--account", ACCOUNT, "--region", REGION, "--env", "qa"])
    assert exc_info.value.code == 2


def test_cli_takes_the_long_env_names_too(capsys: pytest.CaptureFixture[str]) -> None:
    """--env production and --env development print what prod and dev print."""
    for long, short in (("production", "prod"), ("development", "dev")):
        printed = []
        for env in (long, short):
            assert _run_cli(["policy", "--account", ACCOUNT, "--region", REGION, "--env", env]) == 0
            printed.append(capsys.readouterr().out)
        assert printed[0] == printed[1]
        assert f"kb-mcp/{short}/" in printed[0]
