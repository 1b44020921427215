"""The deletion-protection resource policy: rendered for the operator role, linted."""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any

import pytest

from kb_mcp.ops.policy import register
from kb_mcp.ops.resource_policy import (
    PROTECTED_ACTIONS,
    lint_resource_policy,
    render_resource_policy,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/kb-mcp-prod-operator"


def _policy() -> dict[str, Any]:
    return render_resource_policy(operator_role_arn=ROLE)


def _codes(policy: Any) -> set[str]:
    return {finding.code for finding in lint_resource_policy(policy)}


def test_rendered_policy_denies_deletion_and_writes_to_all_but_the_operator() -> None:
    """One Deny for every principal on exactly the protected actions, except the operator."""
    policy = _policy()
    assert lint_resource_policy(policy) == []
    (statement,) = policy["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Resource"]) == (
        "Deny",
        "*",
        "*",
    )
    assert set(statement["Action"]) == PROTECTED_ACTIONS
    assert "secretsmanager:DeleteSecret" in PROTECTED_ACTIONS
    assert "secretsmanager:GetSecretValue" not in PROTECTED_ACTIONS
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": ROLE}}


def _changed(**changes: Any) -> dict[str, Any]:
    policy = copy.deepcopy(_policy())
    policy["Statement"][0].update(changes)
    return policy


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"Effect": "Allow"}, "EFFECT_NOT_DENY"),
        ({"Principal": {"AWS": ROLE}}, "PRINCIPAL_NOT_ALL"),
        ({"Action": ["secretsmanager:PutSecretValue"]}, "UNPROTECTED_ACTION"),
        ({"Action": [*sorted(PROTECTED_ACTIONS), "secretsmanager:GetSecretValue"]}, "EXTRA_ACTION"),
        (
            {"Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"},
            "RESOURCE_NOT_SELF",
        ),
        ({"Condition": {}}, "EXCEPTION_NOT_ONE_ROLE"),
        ({"Condition": {"ArnNotEquals": {"aws:PrincipalArn": "*"}}}, "EXCEPTION_NOT_ONE_ROLE"),
        ({"NotPrincipal": {"AWS": ROLE}}, "NOT_ELEMENT"),
    ],
)
def test_weakened_policies_are_findings(changes: dict[str, Any], code: str) -> None:
    """Each way of weakening the protection is named by its own finding."""
    assert code in _codes(_changed(**changes))


def test_malformed_policies_are_findings_not_crashes() -> None:
    """Not an object, two statements, a wrong version: findings."""
    assert _codes([]) == {"MALFORMED_POLICY"}
    two = _policy()
    two["Statement"] = [two["Statement"][0], two["Statement"][0]]
    two["Version"] = "2008-10-17"
    assert "MALFORMED_POLICY" in _codes(two)


def test_a_role_arn_is_required() -> None:
    """Anything but an IAM role ARN is refused with a message naming the flag."""
    with pytest.raises(ValueError, match="not an iam role arn"):
        render_resource_policy(operator_role_arn=f"arn:aws:iam::{ACCOUNT}:user/someone")


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kb-mcp secrets")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


BASE = ["policy", "--kind", "resource", "--account", ACCOUNT, "--region", "us-east-1"]


def test_cli_prints_and_checks_the_resource_policy(capsys: pytest.CaptureFixture[str]) -> None:
    """`--kind resource --operator-role-arn ARN --check` prints it and exits 0."""
    assert _run_cli([*BASE, "--env", "prod", "--operator-role-arn", ROLE, "--check"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == _policy()
    assert out.err == "kb-mcp secrets policy: check passed: the resource policy has no findings\n"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "needs --operator-role-arn"),
        (["--operator-role-arn", "arn:aws:iam::210987654321:role/x"], "not a role of --account"),
    ],
)
def test_cli_usage_errors_exit_2(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No role, or a role of another account: exit 2 with the reason."""
    assert _run_cli([*BASE, "--env", "prod", *extra]) == 2
    assert needle in capsys.readouterr().err
