"""The self-protecting resource policy: rendered for the operator, readers and writers, linted."""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any

import pytest

from kb_mcp.ops.policy import register
from kb_mcp.ops.resource_policy import (
    PROTECTED_ACTIONS,
    READ_ACTIONS,
    lint_resource_policy,
    render_resource_policy,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/kb-mcp-prod-operator"
TASK = f"arn:aws:iam::{ACCOUNT}:role/kb-mcp-prod-task"
ROTATION = f"arn:aws:iam::{ACCOUNT}:role/kb-mcp-prod-rotation"


def _policy() -> dict[str, Any]:
    return render_resource_policy(
        operator_role_arn=ROLE, reader_role_arns=[TASK, ROTATION], writer_role_arns=[ROTATION]
    )


def _codes(policy: Any) -> set[str]:
    return {finding.code for finding in lint_resource_policy(policy)}


def test_rendered_policy_denies_deletion_and_writes_to_all_but_the_operator() -> None:
    """A Deny for every principal on the protected actions, except the operator and writers."""
    policy = _policy()
    assert lint_resource_policy(policy) == []
    writes, _ = policy["Statement"]
    assert (writes["Effect"], writes["Principal"], writes["Resource"]) == ("Deny", "*", "*")
    assert set(writes["Action"]) == PROTECTED_ACTIONS
    assert "secretsmanager:DeleteSecret" in PROTECTED_ACTIONS
    assert "secretsmanager:GetSecretValue" not in PROTECTED_ACTIONS
    assert writes["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [ROLE, ROTATION]}}


def test_the_protection_cannot_be_stripped_by_another_principal() -> None:
    """Put/DeleteResourcePolicy are denied like deletion: no strip-then-delete."""
    assert {
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:DeleteResourcePolicy",
    } <= PROTECTED_ACTIONS


def test_reads_are_denied_to_all_but_the_readers_and_the_operator() -> None:
    """GetSecretValue is denied to every principal but the operator and the listed readers."""
    _, reads = _policy()["Statement"]
    assert (reads["Effect"], reads["Principal"], reads["Resource"]) == ("Deny", "*", "*")
    assert {reads["Action"]} == READ_ACTIONS
    assert reads["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [ROLE, TASK, ROTATION]}}


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
        ({"Condition": {}}, "EXCEPTION_NOT_ROLES"),
        ({"Condition": {"ArnNotEquals": {"aws:PrincipalArn": "*"}}}, "EXCEPTION_NOT_ROLES"),
        (
            {"Condition": {"ArnNotEquals": {"aws:PrincipalArn": [TASK]}}},
            "OPERATOR_NOT_FIRST",
        ),
        ({"NotPrincipal": {"AWS": ROLE}}, "NOT_ELEMENT"),
    ],
)
def test_weakened_policies_are_findings(changes: dict[str, Any], code: str) -> None:
    """Each way of weakening the protection is named by its own finding."""
    assert code in _codes(_changed(**changes))


def test_malformed_policies_are_findings_not_crashes() -> None:
    """Not an object, one statement, a wrong version: findings."""
    assert _codes([]) == {"MALFORMED_POLICY"}
    one = _policy()
    one["Statement"] = [one["Statement"][0]]
    one["Version"] = "2008-10-17"
    assert "MALFORMED_POLICY" in _codes(one)


def test_a_role_arn_is_required() -> None:
    """Anything but an IAM role ARN is refused with a message naming the flag."""
    with pytest.raises(ValueError, match="not an iam role arn"):
        render_resource_policy(
            operator_role_arn=f"arn:aws:iam::{ACCOUNT}:user/someone", reader_role_arns=[TASK]
        )
    with pytest.raises(ValueError, match="reader role arn"):
        render_resource_policy(operator_role_arn=ROLE, reader_role_arns=["*"])


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kb-mcp secrets")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


BASE = ["policy", "--kind", "resource", "--account", ACCOUNT, "--region", "us-east-1"]


def test_cli_prints_and_checks_the_resource_policy(capsys: pytest.CaptureFixture[str]) -> None:
    """`--kind resource` with operator, readers, writer and `--check` prints it, exits 0."""
    roles = ["--operator-role-arn", ROLE, "--reader-role-arn", TASK, "--reader-role-arn", ROTATION]
    assert _run_cli([*BASE, "--env", "prod", *roles, "--writer-role-arn", ROTATION, "--check"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == _policy()
    assert out.err == "kb-mcp secrets policy: check passed: the resource policy has no findings\n"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "needs --operator-role-arn"),
        (["--operator-role-arn", ROLE], "needs --reader-role-arn"),
        (["--operator-role-arn", "arn:aws:iam::210987654321:role/x"], "not a role of --account"),
    ],
)
def test_cli_usage_errors_exit_2(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No role, or a role of another account: exit 2 with the reason."""
    assert _run_cli([*BASE, "--env", "prod", *extra]) == 2
    assert needle in capsys.readouterr().err


ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"


def _denied(policy: dict[str, Any], principal: str, action: str) -> bool:
    """The resource policy's verdict for `principal` calling `action`: an explicit deny or not
    (what the IAM policy simulator reports as explicitDeny; identity policies grant the rest)."""
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        excepted = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        if action in actions and principal not in excepted:
            return True
    return False


@pytest.mark.parametrize(
    ("principal", "action", "denied"),
    [
        (TASK, "secretsmanager:GetSecretValue", False),
        (TASK, "secretsmanager:PutSecretValue", True),
        (TASK, "secretsmanager:PutResourcePolicy", True),
        (ROLE, "secretsmanager:GetSecretValue", False),
        (ROLE, "secretsmanager:PutSecretValue", False),
        (ROLE, "secretsmanager:UpdateSecretVersionStage", False),
        (ROLE, "secretsmanager:RestoreSecret", False),
        (ROLE, "secretsmanager:PutResourcePolicy", False),
        (ROTATION, "secretsmanager:PutSecretValue", False),
        (ROTATION, "secretsmanager:UpdateSecretVersionStage", False),
        (ADMIN, "secretsmanager:GetSecretValue", True),
        (ADMIN, "secretsmanager:DeleteResourcePolicy", True),
        (ADMIN, "secretsmanager:PutResourcePolicy", True),
        (ADMIN, "secretsmanager:DeleteSecret", True),
        (ADMIN, "secretsmanager:RestoreSecret", False),
    ],
)
def test_who_may_do_what(principal: str, action: str, denied: bool) -> None:
    """The task role reads; the operator rotates, rolls back, restores and re-protects; the
    rotation function writes; an administrator can neither read, strip the policy, nor delete."""
    assert _denied(_policy(), principal, action) is denied
