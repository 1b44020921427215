# kb-mcp in one AWS account and region: its secrets, the IAM roles that read them, the
# alarms on the metrics the server emits as CloudWatch EMF, and the ECS service.

data "aws_caller_identity" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  name = "kb-mcp-${var.environment}"

  # The primary region creates the secrets; a failover region (var.primary_region set)
  # uses their replicas and suffixes its IAM names (IAM is global) with its region.
  is_primary = var.primary_region == null
  iam_name   = local.is_primary ? local.name : "${local.name}-${var.region}"
  # Billing metrics are account-wide and live in us-east-1: one alarm, from the primary.
  billing_alarm = var.create_billing_alarm && local.is_primary

  # KB_MCP_ENV and the EMF `Environment` dimension use the long names.
  kb_mcp_env = {
    dev     = "development"
    staging = "staging"
    prod    = "production"
  }[var.environment]

  secret_names = {
    openai     = "kb-mcp/${var.environment}/openai-api-key"
    postgres   = "kb-mcp/${var.environment}/postgres-credentials"
    auth_token = "kb-mcp/${var.environment}/mcp-auth-token"
  }

  log_group_name = "/ecs/${local.name}"

  # var.cluster is a name or an ARN; the scheduler needs the ARN.
  cluster_arn = startswith(var.cluster, "arn:") ? var.cluster : "arn:aws:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster}"

  container_name = "kb-mcp"
  container_port = 8080

  # Dimensions every EMF metric of the server carries (SecretsApiCalls adds Operation).
  metric_namespace = "KbMcp"
  metric_dimensions = {
    Service     = "kb-mcp"
    Environment = local.kb_mcp_env
  }

  # One template for the task-role policy, shared with `kb-mcp secrets policy`
  # (kb_mcp/ops/policy.py): see README.md.
  policy_templates = "${path.module}/../../kb_mcp/ops/templates"

  tags = merge(var.tags, {
    Service     = "kb-mcp"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}
