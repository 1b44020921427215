# The secrets only: their values are never written by Terraform (they would land in the
# state file in plaintext). Seed them with `kb-mcp secrets seed` or `aws secretsmanager
# put-secret-value`, and rotate them with `kb-mcp secrets rotate` (../RUNBOOK.md).
#
# No kms_key_id: Secrets Manager encrypts with the AWS-managed key aws/secretsmanager,
# which any principal of the account allowed to call GetSecretValue may decrypt through
# Secrets Manager, so the task role needs no KMS statement.

resource "aws_secretsmanager_secret" "openai" {
  name                    = local.secret_names.openai
  description             = "kb-mcp ${var.environment}: OpenAI API key (a plain string)"
  recovery_window_in_days = var.recovery_window_days
}

resource "aws_secretsmanager_secret" "postgres" {
  name                    = local.secret_names.postgres
  description             = "kb-mcp ${var.environment}: PostgreSQL credentials (JSON: username, password, host, port, database)"
  recovery_window_in_days = var.recovery_window_days
}

resource "aws_secretsmanager_secret" "auth_token" {
  count = var.enable_auth_token ? 1 : 0

  name                    = local.secret_names.auth_token
  description             = "kb-mcp ${var.environment}: bearer token clients present on /mcp"
  recovery_window_in_days = var.recovery_window_days
}
