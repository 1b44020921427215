# Optional RDS Proxy between the tasks and the database (var.enable_rds_proxy).
#
# The proxy logs in to the database with the same postgres-credentials secret, read by a
# role of its own (GetSecretValue on that secret only; the secrets' resource policy lists
# it among the readers). The tasks keep reading the secret themselves and connect to the
# proxy endpoint (KB_MCP_DB_HOST_OVERRIDE). What rotation then means: RUNBOOK.md, "RDS Proxy".

locals {
  db_host_override = var.enable_rds_proxy ? aws_db_proxy.this[0].endpoint : var.db_host_override
}

data "aws_iam_policy_document" "rds_proxy_assume" {
  statement {
    sid     = "RdsOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "rds_proxy" {
  count = var.enable_rds_proxy ? 1 : 0

  name               = "${local.iam_name}-rds-proxy"
  description        = "kb-mcp ${var.environment} RDS Proxy: reads the PostgreSQL credentials secret, nothing else"
  assume_role_policy = data.aws_iam_policy_document.rds_proxy_assume.json
}

resource "aws_iam_role_policy" "rds_proxy" {
  count = var.enable_rds_proxy ? 1 : 0

  name = "read-postgres-credentials"
  role = aws_iam_role.rds_proxy[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ReadThePostgresCredentials"
      Effect   = "Allow"
      Action   = "secretsmanager:GetSecretValue"
      Resource = local.protected_secret_arns.postgres
    }]
  })
}

resource "aws_security_group" "rds_proxy" {
  #checkov:skip=CKV2_AWS_5:attached to aws_db_proxy.this (vpc_security_group_ids), a resource checkov's attachment graph does not know
  count = var.enable_rds_proxy ? 1 : 0

  name        = "${local.name}-rds-proxy"
  description = "kb-mcp ${var.environment} RDS Proxy: PostgreSQL from the tasks, to the database"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "proxy_from_tasks" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id            = aws_security_group.rds_proxy[0].id
  description                  = "PostgreSQL from the kb-mcp tasks"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_database" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id = aws_security_group.rds_proxy[0].id
  description       = "PostgreSQL to the database inside the VPC"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_db_proxy" "this" {
  count = var.enable_rds_proxy ? 1 : 0

  name                   = local.name
  engine_family          = "POSTGRESQL"
  role_arn               = aws_iam_role.rds_proxy[0].arn
  vpc_subnet_ids         = var.subnets
  vpc_security_group_ids = [aws_security_group.rds_proxy[0].id]
  require_tls            = true
  idle_client_timeout    = 1800

  auth {
    auth_scheme = "SECRETS"
    secret_arn  = local.protected_secret_arns.postgres
    iam_auth    = "DISABLED"
    description = "kb-mcp ${var.environment} application credentials (alternating users)"
  }

  lifecycle {
    precondition {
      condition     = (var.db_instance_identifier == null) != (var.db_cluster_identifier == null)
      error_message = "enable_rds_proxy needs exactly one of db_instance_identifier and db_cluster_identifier."
    }
  }
}

resource "aws_db_proxy_default_target_group" "this" {
  count = var.enable_rds_proxy ? 1 : 0

  db_proxy_name = aws_db_proxy.this[0].name

  connection_pool_config {
    # The proxy's share of max_connections: everything but the reserve.
    max_connections_percent = floor(100 * (var.db_max_connections - var.db_reserved_connections) / var.db_max_connections)
  }
}

resource "aws_db_proxy_target" "this" {
  count = var.enable_rds_proxy ? 1 : 0

  db_proxy_name          = aws_db_proxy.this[0].name
  target_group_name      = aws_db_proxy_default_target_group.this[0].name
  db_instance_identifier = var.db_instance_identifier
  db_cluster_identifier  = var.db_cluster_identifier
}
