# Three IAM pieces:
# - the task role: what the running server may do (GetSecretValue on its secrets, nothing else);
# - the execution role: what ECS does for the task (pull the image, write logs), no secrets;
# - the operator policy: what `kb-mcp secrets rotate/age/seed` need, for people or CI to attach.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasksOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only ECS acting for this account may assume the roles.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  name               = "${local.iam_name}-task"
  description        = "kb-mcp ${var.environment} task role: reads its own secrets, nothing else"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# The same template `kb-mcp secrets policy` renders (kb_mcp/ops/policy.py); the resources
# match the secret names in secrets.tf with AWS's six-character ARN suffix (-??????), in
# var.region and in each replica region (the server fails over to them for reads).
resource "aws_iam_role_policy" "task_secrets" {
  name = "read-kb-mcp-secrets"
  role = aws_iam_role.task.id
  policy = templatefile("${local.policy_templates}/task-role-policy.json.tftpl", {
    account           = data.aws_caller_identity.current.account_id
    region            = var.region
    env               = var.environment
    auth_token_secret = var.enable_auth_token
    replica_regions   = var.replica_regions
  })
}

resource "aws_iam_role" "execution" {
  name               = "${local.iam_name}-execution"
  description        = "kb-mcp ${var.environment} task execution role: image pull and logs, no secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.service.arn}:log-stream:*"]
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = var.ecr_repository_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      # GetAuthorizationToken has no resource-level permissions: "*" is the only form.
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-write-logs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Not attached here: attach it to the operator's role, or to the CI role that runs
# `kb-mcp secrets rotate` / `age`. The checked-in ../iam/operator-rotation-policy.json is
# this template rendered for account 123456789012, us-east-1, prod.
resource "aws_iam_policy" "operator_rotation" {
  name        = "${local.iam_name}-secrets-operator"
  description = "kb-mcp ${var.environment}: rotate, age-check and seed the kb-mcp secrets"
  policy = templatefile("${local.policy_templates}/operator-rotation-policy.json.tftpl", {
    account = data.aws_caller_identity.current.account_id
    region  = var.region
    env     = var.environment
  })
}
