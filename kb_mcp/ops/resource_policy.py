"""Deletion protection: the resource policy on each kb-mcp secret, rendered and linted.

One template (`templates/secret-resource-policy.json.tftpl`), rendered by Terraform's
`templatefile` in `secrets/terraform/secrets.tf` and here by `kb-mcp secrets policy --kind
resource`. It is a single `Deny` for every principal but the operator role, on the calls
that delete a secret or write its value: `DeleteSecret`, `PutSecretValue`, `UpdateSecret`
(which can carry a value), `UpdateSecretVersionStage` (moving `AWSCURRENT` changes the
value in service), and the two calls that drop a replica. Reads stay governed by identity
policies (the task role's `GetSecretValue`). The operator role keeps every right its own
policy gives it: rotation and rollback (`kb-mcp secrets rotate`), seeding, and, when
intended, deletion (with its recovery window).

`lint_resource_policy` checks it by structure (only `Deny`, `Principal: "*"`, exactly the
protected actions, `Resource: "*"`, excepted by `aws:PrincipalArn` of one role) and with
parliament.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kb_mcp.errors import ConfigError
from kb_mcp.ops.policy import PolicyFinding, parliament_findings, render_policy_file

__all__ = [
    "PROTECTED_ACTIONS",
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
    }
)
_ROLE_ARN_RE = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def render_resource_policy(*, operator_role_arn: str) -> dict[str, Any]:
    """The resource policy every kb-mcp secret carries (the same for each of them)."""
    if not _ROLE_ARN_RE.fullmatch(operator_role_arn):
        raise ConfigError(
            f"operator role {operator_role_arn!r} is not an iam role arn "
            "(arn:aws:iam::<account>:role/<name>)",
            variable="--operator-role-arn",
        )
    return render_policy_file(RESOURCE_TEMPLATE, {"operator_role_arn": operator_role_arn})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement_findings(where: str, statement: Any) -> list[PolicyFinding]:
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
    if missing := PROTECTED_ACTIONS - actions:
        findings.append(high("UNPROTECTED_ACTION", f"does not deny {', '.join(sorted(missing))}"))
    if extra := actions - PROTECTED_ACTIONS:
        findings.append(high("EXTRA_ACTION", f"also denies {', '.join(sorted(extra))}"))
    if statement.get("Resource") != "*":
        findings.append(high("RESOURCE_NOT_SELF", "does not apply to the secret it is on (*)"))
    condition = statement.get("Condition")
    excepted = (
        condition.get("ArnNotEquals", {}).get("aws:PrincipalArn")
        if isinstance(condition, Mapping) and set(condition) == {"ArnNotEquals"}
        else None
    )
    if not isinstance(excepted, str) or not _ROLE_ARN_RE.fullmatch(excepted):
        findings.append(
            high("EXCEPTION_NOT_ONE_ROLE", "is not excepted for exactly one role's PrincipalArn")
        )
    return findings


def lint_resource_policy(policy: Any) -> list[PolicyFinding]:
    """Findings for a secret's resource policy; an empty list means it protects the secret."""
    if not isinstance(policy, Mapping) or "Statement" not in policy:
        return [PolicyFinding("HIGH", "MALFORMED_POLICY", "policy is not an object with Statement")]
    findings: list[PolicyFinding] = []
    if policy.get("Version") != "2012-10-17":
        findings.append(PolicyFinding("HIGH", "MALFORMED_POLICY", "Version is not 2012-10-17"))
    statements = _as_list(policy["Statement"])
    if len(statements) != 1:
        findings.append(
            PolicyFinding("HIGH", "MALFORMED_POLICY", "policy is not exactly one statement")
        )
    for index, statement in enumerate(statements):
        findings.extend(_statement_findings(f"statement {index}", statement))
    findings.extend(parliament_findings(policy))
    return findings
