# Automatic rotation of the PostgreSQL credentials (opt-in: var.enable_postgres_rotation).
#
# A Secrets Manager rotation function running kb_mcp.ops.rotation.lambda_handler: the same
# four steps and alternating-users strategy as `kb-mcp secrets rotate postgres`, one step
# per invocation as Secrets Manager's rotation contract asks. It reads the master secret
# (kb-mcp/<env>/postgres-master, CREATEROLE) to create or re-password the other role, runs
# in var.subnets to reach the database, and has a role of its own allowed exactly that.
# Build its package with ../build-rotation-package.sh. The OpenAI key stays manual
# (RUNBOOK.md: "Automatic rotation").

locals {
  rotation_enabled       = var.enable_postgres_rotation && local.is_primary
  master_secret_name     = "kb-mcp/${var.environment}/postgres-master"
  master_secret_arn      = "arn:aws:secretsmanager:${var.region}:${local.account_id}:secret:${local.master_secret_name}-??????"
  rotation_function_name = "${local.name}-rotate-postgres"
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "rotation" {
  count = local.rotation_enabled ? 1 : 0

  name               = "${local.iam_name}-rotate-postgres"
  description        = "kb-mcp ${var.environment} PostgreSQL rotation function: the four rotation steps on one secret"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "rotation" {
  count = local.rotation_enabled ? 1 : 0

  statement {
    # The calls kb_mcp/ops/rotation/{steps,lambda_handler}.py make, on this secret only.
    sid = "RotateThePostgresSecret"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:UpdateSecretVersionStage",
    ]
    resources = [local.protected_secret_arns.postgres]
  }

  statement {
    sid       = "ReadTheMasterSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.master_secret_arn]
  }

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.rotation[0].arn}:log-stream:*"]
  }

  statement {
    # Its environment variables are encrypted with the module's key.
    sid       = "DecryptItsEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "rotation" {
  count = local.rotation_enabled ? 1 : 0

  name   = "rotate-postgres-credentials"
  role   = aws_iam_role.rotation[0].id
  policy = data.aws_iam_policy_document.rotation[0].json
}

# Network interfaces in var.subnets (AWS's managed policy; its actions take no resource).
resource "aws_iam_role_policy_attachment" "rotation_vpc" {
  count = local.rotation_enabled ? 1 : 0

  role       = aws_iam_role.rotation[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_cloudwatch_log_group" "rotation" {
  count = local.rotation_enabled ? 1 : 0

  name              = "/aws/lambda/${local.rotation_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
}

resource "aws_security_group" "rotation" {
  count = local.rotation_enabled ? 1 : 0

  name        = "${local.name}-rotation"
  description = "kb-mcp ${var.environment} rotation function: to PostgreSQL and Secrets Manager only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "rotation_https" {
  count = local.rotation_enabled ? 1 : 0

  security_group_id = aws_security_group.rotation[0].id
  description       = "Secrets Manager over HTTPS (NAT or a VPC endpoint)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "rotation_postgres" {
  count = local.rotation_enabled ? 1 : 0

  security_group_id = aws_security_group.rotation[0].id
  description       = "PostgreSQL inside the VPC"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_vpc_security_group_ingress_rule" "database_from_rotation" {
  count = local.rotation_enabled && var.db_security_group_id != null ? 1 : 0

  security_group_id            = var.db_security_group_id
  description                  = "PostgreSQL from the kb-mcp rotation function"
  referenced_security_group_id = aws_security_group.rotation[0].id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_lambda_function" "rotation" {
  #checkov:skip=CKV_AWS_116:Secrets Manager invokes the function synchronously and records a failed step itself (RotationFailed event, rotation retried); there is no asynchronous event to dead-letter
  #checkov:skip=CKV_AWS_272:the package is built from this repository by build-rotation-package.sh and deployed by the operator role; code signing is an organisation-wide choice outside this module
  count = local.rotation_enabled ? 1 : 0

  function_name                  = local.rotation_function_name
  description                    = "kb-mcp ${var.environment}: rotates ${local.secret_names.postgres} (alternating users)"
  role                           = aws_iam_role.rotation[0].arn
  runtime                        = "python3.12"
  architectures                  = [var.cpu_architecture == "ARM64" ? "arm64" : "x86_64"]
  handler                        = "kb_mcp.ops.rotation.lambda_handler.handler"
  filename                       = var.rotation_package_path
  source_code_hash               = filebase64sha256(var.rotation_package_path)
  timeout                        = 120
  memory_size                    = 512
  reserved_concurrent_executions = 2
  kms_key_arn                    = local.kms_key_arn

  environment {
    variables = {
      # The handler reads kb-mcp/<env>/postgres-master (local.master_secret_name).
      KB_MCP_ENV                  = local.kb_mcp_env
      KB_MCP_POSTGRES_SECRET_NAME = local.secret_names.postgres
      KB_MCP_DB_CONNECT_TIMEOUT_S = "10"
    }
  }

  vpc_config {
    subnet_ids         = var.subnets
    security_group_ids = [aws_security_group.rotation[0].id]
  }

  tracing_config {
    mode = "PassThrough"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.rotation[0].name
  }

  depends_on = [aws_iam_role_policy.rotation, aws_iam_role_policy_attachment.rotation_vpc]

  lifecycle {
    precondition {
      condition     = var.rotation_package_path != null
      error_message = "enable_postgres_rotation needs rotation_package_path (build it with secrets/build-rotation-package.sh)."
    }
  }
}

resource "aws_lambda_permission" "secrets_manager_rotates" {
  count = local.rotation_enabled ? 1 : 0

  statement_id   = "SecretsManagerRotatesThePostgresSecret"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.rotation[0].function_name
  principal      = "secretsmanager.amazonaws.com"
  source_arn     = local.protected_secret_arns.postgres
  source_account = local.account_id
}

resource "aws_secretsmanager_secret_rotation" "postgres" {
  count = local.rotation_enabled ? 1 : 0

  secret_id           = aws_secretsmanager_secret.postgres[0].id
  rotation_lambda_arn = aws_lambda_function.rotation[0].arn
  # The first rotation waits for the schedule: seed the secret and the master first.
  rotate_immediately = false

  rotation_rules {
    automatically_after_days = var.rotation_days
  }

  depends_on = [aws_lambda_permission.secrets_manager_rotates, aws_secretsmanager_secret_policy.protect]
}
