"""IAM policies of kb-mcp: render them for a deployment and lint them.

Two policies, one template each, in `kb_mcp/ops/templates/` (Terraform `templatefile`
syntax). The templates are the one source of truth: `secrets/terraform/iam.tf` renders
the same files with `templatefile(...)`, and `kb-mcp secrets policy` renders them here.
They live inside the package so the command works from an installed wheel.

- task role (`task-role-policy.json.tftpl`): `secretsmanager:GetSecretValue` only, on the
  two runtime secrets (three with the HTTP auth-token secret), in the primary region and in
  each replica region (`--replica-regions`: read failover). Resources end in `-??????`:
  AWS appends `-` and six random characters to a secret's ARN, and `??????` matches exactly
  those, so `kb-mcp/prod/openai-api-key-??????` cannot also match a later secret named
  `kb-mcp/prod/openai-api-key-old` the way `-*` would. parliament accepts it.
- operator (`operator-rotation-policy.json.tftpl`): what `kb-mcp secrets rotate/age/seed`
  need, on `kb-mcp/{env}/*` and the alerts topic; never attached to the task role.
- each secret's resource policy (`secret-resource-policy.json.tftpl`, rendered and linted by
  `kb_mcp.ops.resource_policy`): deletion protection.

`lint_policy` checks a task-role policy by structure (one action, scoped resources, no
`Not*` elements) and with parliament; `lint_operator_policy` does the same for the operator
policy's fixed action set.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from kb_mcp.errors import EXIT_OK, EXIT_USAGE, ConfigError
from kb_mcp.ops.tftemplate import TemplateValue, render_template

__all__ = [
    "ENVIRONMENTS",
    "OPERATOR_ACTIONS",
    "TASK_ACTION",
    "PolicyFinding",
    "lint_operator_policy",
    "lint_policy",
    "register",
    "render_operator_policy",
    "render_policy_file",
    "render_task_policy",
    "render_template",
    "template_file",
]

ENVIRONMENTS = ("dev", "staging", "prod")
"""The deployments, as their secret names spell them (`kb-mcp/{env}/...`)."""
_LONG_NAMES = {"development": "dev", "production": "prod"}
ENV_CHOICES = (*ENVIRONMENTS, *_LONG_NAMES)
"""What `--env` accepts, as every other command's `--env` (`kb_mcp.ops.aws.ENV_CHOICES`)."""
TASK_ACTION = "secretsmanager:GetSecretValue"
OPERATOR_ACTIONS = frozenset(
    {
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:CreateSecret",
        "sns:Publish",
    }
)
TASK_TEMPLATE = "task-role-policy.json.tftpl"
OPERATOR_TEMPLATE = "operator-rotation-policy.json.tftpl"

_ACCOUNT_RE = re.compile(r"\d{12}")
# Standard `aws` partition only: the templates write `arn:aws:`, which is wrong in China
# (`aws-cn`) and GovCloud (`aws-us-gov`).
_REGION_RE = re.compile(r"(?!cn-|us-gov-|us-iso)[a-z]{2}-[a-z]+-\d{1,2}")
_SECRET_ARN_RE = re.compile(
    r"arn:aws(?:-[a-z-]+)?:secretsmanager:[a-z0-9-]+:\d{12}:secret:"
    r"[A-Za-z0-9/_+=.@-]*[A-Za-z0-9_+=.@](?:-\?{6}|-\*)"
)
_OPERATOR_RESOURCE_RE = re.compile(
    r"arn:aws(?:-[a-z-]+)?:secretsmanager:[a-z0-9-]+:\d{12}:secret:kb-mcp/[a-z]+/\*"
    r"|arn:aws(?:-[a-z-]+)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+"
)


@dataclass(frozen=True, slots=True)
class PolicyFinding:
    """One problem in a policy. `code` is ours (`EXTRA_ACTION`) or parliament's, prefixed."""

    severity: str  # parliament's scale: CRITICAL, HIGH, MEDIUM, LOW, INFO
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.severity} {self.code}: {self.detail}"


def template_file(name: str) -> Traversable:
    """The packaged template `name` (what Terraform's `templatefile` reads too)."""
    return resources.files("kb_mcp.ops").joinpath("templates", name)


def _validated(account: str, region: str, env: str) -> dict[str, TemplateValue]:
    if not _ACCOUNT_RE.fullmatch(account):
        raise ConfigError(
            f"account {account!r} is not a 12-digit aws account id", variable="--account"
        )
    if not _REGION_RE.fullmatch(region):
        raise ConfigError(
            f"region {region!r} is not an aws region of the standard partition (like us-east-1)",
            variable="--region",
        )
    if env not in ENVIRONMENTS:
        raise ConfigError(f"env {env!r} is not one of {', '.join(ENVIRONMENTS)}", variable="--env")
    return {"account": account, "region": region, "env": env}


def validated_replica_regions(region: str, replica_regions: Sequence[str]) -> list[str]:
    """Replica regions checked like `--region`: each once, never the primary."""
    replicas = list(replica_regions)
    for replica in replicas:
        if not _REGION_RE.fullmatch(replica):
            raise ConfigError(
                f"replica region {replica!r} is not an aws region of the standard partition",
                variable="--replica-regions",
            )
    if region in replicas or len(set(replicas)) != len(replicas):
        raise ConfigError(
            "replica regions must be distinct and must not include the primary region",
            variable="--replica-regions",
        )
    return replicas


def render_policy_file(name: str, variables: Mapping[str, TemplateValue]) -> dict[str, Any]:
    """The packaged template `name` rendered with `variables`, parsed as JSON."""
    text = template_file(name).read_text(encoding="utf-8")
    policy: dict[str, Any] = json.loads(render_template(text, variables))
    return policy


def render_task_policy(
    *,
    account: str,
    region: str,
    env: str,
    auth_token_secret: bool = False,
    replica_regions: Sequence[str] = (),
) -> dict[str, Any]:
    """The ECS task-role policy for one deployment: GetSecretValue on its secrets only,
    in its region and in each replica region."""
    variables = _validated(account, region, env)
    variables["auth_token_secret"] = auth_token_secret
    variables["replica_regions"] = validated_replica_regions(region, replica_regions)
    return render_policy_file(TASK_TEMPLATE, variables)


def render_operator_policy(*, account: str, region: str, env: str) -> dict[str, Any]:
    """The operator policy for `kb-mcp secrets rotate/age/seed` in one environment."""
    return render_policy_file(OPERATOR_TEMPLATE, _validated(account, region, env))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(policy: Mapping[str, Any]) -> Iterator[tuple[int, Any]]:
    yield from enumerate(_as_list(policy.get("Statement", [])))


def _structural(
    policy: Any,
    *,
    allowed_actions: frozenset[str],
    resource_ok: Callable[[str], bool],
    resource_rule: str,
) -> list[PolicyFinding]:
    def high(code: str, detail: str) -> PolicyFinding:
        return PolicyFinding("HIGH", code, detail)

    if not isinstance(policy, Mapping) or "Statement" not in policy:
        return [high("MALFORMED_POLICY", "policy is not an object with a Statement")]
    findings: list[PolicyFinding] = []
    if policy.get("Version") != "2012-10-17":
        findings.append(high("MALFORMED_POLICY", "Version is not 2012-10-17"))
    allowed = {action.lower() for action in allowed_actions}
    seen: set[str] = set()
    for index, statement in _statements(policy):
        where = f"statement {index}"
        if not isinstance(statement, Mapping):
            findings.append(high("MALFORMED_POLICY", f"{where} is not an object"))
            continue
        if statement.get("Effect") != "Allow":
            findings.append(
                high("EFFECT_NOT_ALLOW", f"{where} has Effect {statement.get('Effect')!r}")
            )
        for element, code in (
            ("NotAction", "NOT_ACTION"),
            ("NotResource", "NOT_RESOURCE"),
            ("Principal", "PRINCIPAL"),
            ("NotPrincipal", "PRINCIPAL"),
        ):
            if element in statement:
                findings.append(high(code, f"{where} uses {element}"))
        actions = [str(action) for action in _as_list(statement.get("Action", []))]
        if not actions and "NotAction" not in statement:
            findings.append(high("MISSING_ACTION", f"{where} has no Action"))
        for action in actions:
            if "*" in action or "?" in action:
                findings.append(high("WILDCARD_ACTION", f"{where} allows {action}"))
            elif action.lower() not in allowed:
                findings.append(high("EXTRA_ACTION", f"{where} allows {action}"))
            else:
                seen.add(action.lower())
        resources_ = [str(resource) for resource in _as_list(statement.get("Resource", []))]
        if not resources_ and "NotResource" not in statement:
            findings.append(high("MISSING_RESOURCE", f"{where} has no Resource"))
        for resource in resources_:
            if resource == "*":
                findings.append(high("RESOURCE_STAR", f"{where} applies to every resource"))
            elif not resource_ok(resource):
                findings.append(
                    high("RESOURCE_NOT_SCOPED", f"{where}: {resource} is not {resource_rule}")
                )
    if not seen and not findings:
        findings.append(high("MISSING_ACTION", "policy allows none of the expected actions"))
    return findings


def _parliament() -> Any:
    with warnings.catch_warnings():
        # parliament leaves its config file open at import and imports pkg_resources.
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import parliament
    return parliament


def _parliament_severities(parliament: Any) -> dict[str, str]:
    """Severity per issue: parliament's config plus its community auditors' override file.

    Read here instead of `parliament.override_config`, which mutates parliament's globals.
    """
    severities = {issue: str(entry["severity"]) for issue, entry in parliament.config.items()}
    override = Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
    with override.open(encoding="utf-8") as stream:
        community: dict[str, dict[str, Any]] = parliament.yaml.safe_load(stream)
    severities.update({issue: str(entry["severity"]) for issue, entry in community.items()})
    return severities


def parliament_findings(policy: Mapping[str, Any]) -> list[PolicyFinding]:
    """parliament's findings (with its community auditors), codes prefixed `parliament:`."""
    parliament = _parliament()
    analyzed = parliament.analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    severities = _parliament_severities(parliament)
    findings: list[PolicyFinding] = []
    for finding in analyzed.findings:
        severity = severities.get(finding.issue, "MEDIUM")
        if severity == "MUTE":
            continue
        # Community auditors leave `detail` empty and say what they found in `location`.
        detail = finding.detail or finding.location
        if not isinstance(detail, str):
            detail = json.dumps(detail, default=str)
        findings.append(PolicyFinding(severity, f"parliament:{finding.issue}", detail))
    return findings


def lint_policy(policy: Mapping[str, Any]) -> list[PolicyFinding]:
    """Findings for a task-role policy; an empty list means it is least-privilege."""
    findings = _structural(
        policy,
        allowed_actions=frozenset({TASK_ACTION}),
        resource_ok=lambda resource: _SECRET_ARN_RE.fullmatch(resource) is not None,
        resource_rule="a secretsmanager secret arn with a concrete name",
    )
    if isinstance(policy, Mapping):
        findings.extend(parliament_findings(policy))
    return findings


def lint_operator_policy(policy: Mapping[str, Any]) -> list[PolicyFinding]:
    """Findings for the operator policy: only its fixed actions, on kb-mcp secrets and sns."""
    findings = _structural(
        policy,
        allowed_actions=OPERATOR_ACTIONS,
        resource_ok=lambda resource: _OPERATOR_RESOURCE_RE.fullmatch(resource) is not None,
        resource_rule="kb-mcp/{env}/* secrets or an sns topic",
    )
    if isinstance(policy, Mapping):
        findings.extend(parliament_findings(policy))
    return findings


def _run(args: argparse.Namespace) -> int:
    # Imported here: the resource-policy module builds on this one.
    from kb_mcp.ops.resource_policy import lint_resource_policy, render_resource_policy

    args.env = _LONG_NAMES.get(args.env, args.env)
    try:
        if args.kind == "resource":
            if not args.operator_role_arn:
                raise ConfigError(
                    "--kind resource needs --operator-role-arn", variable="--operator-role-arn"
                )
            _validated(args.account, args.region, args.env)
            if args.operator_role_arn.split(":")[4:5] != [args.account]:
                raise ConfigError(
                    "--operator-role-arn is not a role of --account", variable="--operator-role-arn"
                )
            if not args.reader_role_arn:
                raise ConfigError(
                    "--kind resource needs --reader-role-arn (the task role at least)",
                    variable="--reader-role-arn",
                )
            policy = render_resource_policy(
                operator_role_arn=args.operator_role_arn,
                reader_role_arns=args.reader_role_arn,
                writer_role_arns=args.writer_role_arn,
            )
        elif args.kind == "operator":
            policy = render_operator_policy(account=args.account, region=args.region, env=args.env)
        else:
            policy = render_task_policy(
                account=args.account,
                region=args.region,
                env=args.env,
                auth_token_secret=args.with_auth_token,
                replica_regions=[r.strip() for r in args.replica_regions.split(",") if r.strip()],
            )
    except ValueError as exc:
        print(f"kb-mcp secrets policy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(json.dumps(policy, indent=2) + "\n")
    if not args.check:
        return EXIT_OK
    lint = {
        "operator": lint_operator_policy,
        "resource": lint_resource_policy,
        "task": lint_policy,
    }[args.kind]
    findings = lint(policy)
    for finding in findings:
        print(finding, file=sys.stderr)
    what = f"the {args.kind} policy"
    if findings:
        print(
            f"kb-mcp secrets policy: check failed: {what} has {len(findings)} finding(s)",
            file=sys.stderr,
        )
        return 1
    print(f"kb-mcp secrets policy: check passed: {what} has no findings", file=sys.stderr)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `policy` (print, optionally lint, the IAM policy of a deployment)."""
    parser = subparsers.add_parser(
        "policy",
        help="print the least-privilege IAM policy for a deployment",
        description=(
            "Print the ECS task-role policy (GetSecretValue on this deployment's secrets "
            "only) or the operator policy used by rotate/age/seed, as JSON."
        ),
    )
    parser.add_argument("--account", required=True, help="12-digit AWS account id")
    parser.add_argument("--region", required=True, help="AWS region, like us-east-1")
    parser.add_argument("--env", required=True, choices=ENV_CHOICES, help="deployment")
    parser.add_argument(
        "--with-auth-token",
        action="store_true",
        help="also allow reading kb-mcp/{env}/mcp-auth-token (HTTP bearer token)",
    )
    parser.add_argument(
        "--replica-regions",
        default="",
        metavar="REGION[,REGION...]",
        help="regions holding replicas of the secrets (read failover), comma-separated",
    )
    parser.add_argument(
        "--kind",
        choices=("task", "operator", "resource"),
        default="task",
        help=(
            "task: the ECS task role (default); operator: rotate/age/seed tooling; "
            "resource: each secret's deletion-protection resource policy"
        ),
    )
    parser.add_argument(
        "--operator-role-arn",
        metavar="ARN",
        help="with --kind resource: the role allowed to delete, write, read and re-protect",
    )
    parser.add_argument(
        "--reader-role-arn",
        metavar="ARN",
        action="append",
        default=[],
        help="with --kind resource: a role that may read the values (the task role); repeat",
    )
    parser.add_argument(
        "--writer-role-arn",
        metavar="ARN",
        action="append",
        default=[],
        help="with --kind resource: a role that may write values (the rotation function's)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="lint the policy (structure and parliament); exit 1 on any finding",
    )
    parser.set_defaults(handler=_run)
