# The secrets only: their values are never written by Terraform (they would land in the
# state file in plaintext). Seed them with `kb-mcp secrets seed` or `aws secretsmanager
# put-secret-value`, and rotate them with `kb-mcp secrets rotate` (../RUNBOOK.md).
#
# No kms_key_id: Secrets Manager encrypts with the AWS-managed key aws/secretsmanager,
# which any principal of the account allowed to call GetSecretValue may decrypt through
# Secrets Manager, so the task role needs no KMS statement.
#
# Deletion protection, three layers: `prevent_destroy` (Terraform refuses to plan their
# destruction), a resource policy on each secret denying DeleteSecret and value writes to
# every principal but var.operator_role_arn (the template kb-mcp secrets policy --kind
# resource renders and lints), and the recovery window (a deleted secret can be restored
# for var.recovery_window_days: ../RUNBOOK.md, "Restoring a deleted secret").
#
# Replicas: each secret is replicated to var.replica_regions (same name, same versions,
# same resource policy), where the server reads it when var.region is unavailable. In a
# failover region (var.primary_region set) the module creates no secret: it looks up those
# replicas by name (RUNBOOK.md, "Regional failover of the whole service").

resource "aws_secretsmanager_secret" "openai" {
  #checkov:skip=CKV_AWS_149:the AWS-managed key aws/secretsmanager is deliberate (the story's non-goal: no customer-managed key, no kms:Decrypt in the task role)
  #checkov:skip=CKV2_AWS_57:rotation is manual by design (kb-mcp secrets rotate, zero-downtime), its age checked daily by the scheduled age check
  count = local.is_primary ? 1 : 0

  name                    = local.secret_names.openai
  description             = "kb-mcp ${var.environment}: OpenAI API key (a plain string)"
  recovery_window_in_days = var.recovery_window_days

  dynamic "replica" {
    for_each = var.replica_regions
    content {
      region = replica.value
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_secretsmanager_secret" "postgres" {
  #checkov:skip=CKV_AWS_149:the AWS-managed key aws/secretsmanager is deliberate (the story's non-goal: no customer-managed key, no kms:Decrypt in the task role)
  count = local.is_primary ? 1 : 0

  name                    = local.secret_names.postgres
  description             = "kb-mcp ${var.environment}: PostgreSQL credentials (JSON: username, password, host, port, database)"
  recovery_window_in_days = var.recovery_window_days

  dynamic "replica" {
    for_each = var.replica_regions
    content {
      region = replica.value
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_secretsmanager_secret" "auth_token" {
  #checkov:skip=CKV_AWS_149:the AWS-managed key aws/secretsmanager is deliberate (the story's non-goal: no customer-managed key, no kms:Decrypt in the task role)
  #checkov:skip=CKV2_AWS_57:rotation is manual by design (kb-mcp secrets rotate, zero-downtime), its age checked daily by the scheduled age check
  count = var.enable_auth_token && local.is_primary ? 1 : 0

  name                    = local.secret_names.auth_token
  description             = "kb-mcp ${var.environment}: bearer token clients present on /mcp"
  recovery_window_in_days = var.recovery_window_days

  dynamic "replica" {
    for_each = var.replica_regions
    content {
      region = replica.value
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

# The secrets were created without `count` before failover regions existed.
moved {
  from = aws_secretsmanager_secret.openai
  to   = aws_secretsmanager_secret.openai[0]
}

moved {
  from = aws_secretsmanager_secret.postgres
  to   = aws_secretsmanager_secret.postgres[0]
}

data "aws_secretsmanager_secret" "replica" {
  for_each = local.is_primary ? {} : { for k, v in local.secret_names : k => v if k != "auth_token" || var.enable_auth_token }

  name = each.value
}

locals {
  protected_secret_arns = local.is_primary ? merge(
    {
      openai   = aws_secretsmanager_secret.openai[0].arn
      postgres = aws_secretsmanager_secret.postgres[0].arn
    },
    var.enable_auth_token ? { auth_token = aws_secretsmanager_secret.auth_token[0].arn } : {},
  ) : { for k, secret in data.aws_secretsmanager_secret.replica : k => secret.arn }

  # Who may read the values besides the operator: the task role here and in each failover
  # region (their names are fixed: iam.tf), the rotation function, the RDS Proxy.
  failover_task_role_arns = [for r in var.replica_regions : "arn:aws:iam::${local.account_id}:role/${local.name}-${r}-task"]
  secret_reader_role_arns = concat(
    [aws_iam_role.task.arn],
    local.failover_task_role_arns,
    local.rotation_enabled ? [aws_iam_role.rotation[0].arn] : [],
    var.enable_rds_proxy ? [aws_iam_role.rds_proxy[0].arn] : [],
  )
  secret_writer_role_arns = local.rotation_enabled ? [aws_iam_role.rotation[0].arn] : []

  # The same template `kb-mcp secrets policy --kind resource` renders and lints.
  secret_resource_policy = templatefile("${local.policy_templates}/secret-resource-policy.json.tftpl", {
    operator_role_arn = var.operator_role_arn
    reader_role_arns  = local.secret_reader_role_arns
    writer_role_arns  = local.secret_writer_role_arns
  })
}

# Set in the primary region only: Secrets Manager copies it to the replicas. Denies
# PutResourcePolicy/DeleteResourcePolicy to all but the operator, so it must be applied
# under var.operator_role_arn.
resource "aws_secretsmanager_secret_policy" "protect" {
  for_each = local.is_primary ? local.protected_secret_arns : {}

  secret_arn          = each.value
  policy              = local.secret_resource_policy
  block_public_policy = true
}
