"""Protection that protects itself: the resource policy on each kb-mcp secret, rendered and linted.

One template (`templates/secret-resource-policy.json.tftpl`), rendered by Terraform's
`templatefile` in `secrets/terraform/secrets.tf` and here by `kb-mcp secrets policy --kind
resource`. Two `Deny` statements for every principal but named roles:

- writes: `DeleteSecret`, `PutSecretValue`, `UpdateSecret` (which can carry a value),
  `UpdateSecretVersionStage` (moving `AWSCURRENT` changes the value in service), the two
  calls that drop a replica, `PutResourcePolicy` and `DeleteResourcePolicy` (so nobody
  strips the protection before deleting), `RotateSecret` and `CancelRotateSecret` (which
  choose the function handed the values); allowed to the operator role and the writers
  (the rotation function's role);
- reads: `GetSecretValue`, allowed to the operator role and the readers (the task roles,
  the rotation function's and the RDS Proxy's roles). An account administrator cannot
  read the values either.

The operator role keeps every right its own policy gives it: rotation and rollback
(`kb-mcp secrets rotate`), seeding, restoring, and, when intended, deletion (with its
recovery window).

`lint_resource_policy` checks it by structure (only `Deny`, `Principal: "*"`, exactly the
protected actions, `Resource: "*"`, excepted by `aws:PrincipalArn` of concrete roles, the
operator among them) and with parliament.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from kb_mcp.errors import ConfigError
from kb_mcp.ops.policy import PolicyFinding, parliament_findings, render_policy_file

__all__ = [
    "PROTECTED_ACTIONS",
    "READ_ACTIONS",
    "RESOURCE_TEMPLATE",
    "lint_resource_policy",
    "render_resource_policy",
]

RESOURCE_TEMPLATE = "secret-resource-policy.json.tftpl"
PROTECTED_ACTIONS = frozenset(
    {
        "secretsmanager:DeleteSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecret",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:RemoveRegionsFromReplication",
        "secretsmanager:StopReplicationToReplica",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:DeleteResourcePolicy",
        "secretsmanager:RotateSecret",
        "secretsmanager:CancelRotateSecret",
    }
)
READ_ACTIONS = frozenset({"secretsmanager:GetSecretValue"})
_ROLE_ARN_RE = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def _require_role(arn: str, flag: str) -> str:
    if not _ROLE_ARN_RE.fullmatch(arn):
        raise ConfigError(
            f"{flag[2:].replace('-', ' ')} {arn!r} is not an iam role arn "
            "(arn:aws:iam::<account>:role/<name>)",
            variable=flag,
        )
    return arn


def render_resource_policy(
    *,
    operator_role_arn: str,
    reader_role_arns: Sequence[str],
    writer_role_arns: Sequence[str] = (),
) -> dict[str, Any]:
    """The resource policy every kb-mcp secret carries (the same for each of them).

    `reader_role_arns`: the roles besides the operator that read values (the task roles);
    `writer_role_arns`: the roles besides the operator that write them (rotation function).
    """
    return render_policy_file(
        RESOURCE_TEMPLATE,
        {
            "operator_role_arn": _require_role(operator_role_arn, "--operator-role-arn"),
            "reader_role_arns": [_require_role(a, "--reader-role-arn") for a in reader_role_arns],
            "writer_role_arns": [_require_role(a, "--writer-role-arn") for a in writer_role_arns],
        },
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement_findings(
    where: str, statement: Any, expected: frozenset[str]
) -> list[PolicyFinding]:
    def high(code: str, detail: str) -> PolicyFinding:
        return PolicyFinding("HIGH", code, f"{where} {detail}")

    if not isinstance(statement, Mapping):
        return [high("MALFORMED_POLICY", "is not an object")]
    findings: list[PolicyFinding] = []
    if statement.get("Effect") != "Deny":
        # An Allow in a secret's resource policy can grant another account access.
        findings.append(high("EFFECT_NOT_DENY", f"has Effect {statement.get('Effect')!r}"))
    if statement.get("Principal") != "*":
        findings.append(high("PRINCIPAL_NOT_ALL", "does not apply to every principal"))
    for element in ("NotAction", "NotResource", "NotPrincipal"):
        if element in statement:
            findings.append(high("NOT_ELEMENT", f"uses {element}"))
    actions = {str(action) for action in _as_list(statement.get("Action", []))}
    if missing := expected - actions:
        findings.append(high("UNPROTECTED_ACTION", f"does not deny {', '.join(sorted(missing))}"))
    if extra := actions - expected:
        findings.append(high("EXTRA_ACTION", f"also denies {', '.join(sorted(extra))}"))
    if statement.get("Resource") != "*":
        findings.append(high("RESOURCE_NOT_SELF", "does not apply to the secret it is on (*)"))
    condition = statement.get("Condition")
    excepted = (
        condition.get("ArnNotEquals", {}).get("aws:PrincipalArn")
        if isinstance(condition, Mapping) and set(condition) == {"ArnNotEquals"}
        else None
    )
    roles = _as_list(excepted) if excepted is not None else []
    if not roles or not all(isinstance(r, str) and _ROLE_ARN_RE.fullmatch(r) for r in roles):
        findings.append(
            high("EXCEPTION_NOT_ROLES", "is not excepted for concrete roles' PrincipalArn only")
        )
    return findings


def _excepted(statement: Any) -> list[Any]:
    try:
        return _as_list(statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
    except (KeyError, TypeError):
        return []


def lint_resource_policy(policy: Any) -> list[PolicyFinding]:
    """Findings for a secret's resource policy; an empty list means it protects the secret."""
    if not isinstance(policy, Mapping) or "Statement" not in policy:
        return [PolicyFinding("HIGH", "MALFORMED_POLICY", "policy is not an object with Statement")]
    findings: list[PolicyFinding] = []
    if policy.get("Version") != "2012-10-17":
        findings.append(PolicyFinding("HIGH", "MALFORMED_POLICY", "Version is not 2012-10-17"))
    statements = _as_list(policy["Statement"])
    if len(statements) != 2:
        findings.append(
            PolicyFinding(
                "HIGH", "MALFORMED_POLICY", "policy is not exactly two statements (writes, reads)"
            )
        )
    for index, (statement, expected) in enumerate(
        zip(statements, (PROTECTED_ACTIONS, READ_ACTIONS), strict=False)
    ):
        findings.extend(_statement_findings(f"statement {index}", statement, expected))
    operators = [_excepted(statement)[:1] for statement in statements[:2]]
    if len(operators) == 2 and operators[0] != operators[1]:
        findings.append(
            PolicyFinding(
                "HIGH",
                "OPERATOR_NOT_FIRST",
                "the writes and the reads do not both except the same operator role first",
            )
        )
    findings.extend(parliament_findings(policy))
    return findings
