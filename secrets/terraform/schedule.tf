# The scheduled age check (the story's AC7: alerts and audits run by themselves).
#
# EventBridge Scheduler runs the server's own task definition on var.age_check_schedule
# with a command override, `kb-mcp secrets age --sns-topic-arn <alerts>`, under a role of its
# own: DescribeSecret and ListSecretVersionIds on the secrets (all `age` calls) and
# sns:Publish on the alerts topic. Its SecretAgeDays EMF lines go to the service log group,
# which feeds the SecretAgeDays alarm (alerts.tf); overdue secrets are also published to
# the topic directly. How to see its last run: ../RUNBOOK.md, "The scheduled age check".

resource "aws_iam_role" "age_check" {
  name               = "${local.name}-age-check"
  description        = "kb-mcp ${var.environment} scheduled age check: reads secret metadata, publishes alerts"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "age_check" {
  statement {
    sid       = "ReadSecretMetadata"
    actions   = ["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"]
    resources = values(local.protected_secret_arns)
  }

  statement {
    sid       = "PublishAgeAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    # Publishing to the encrypted topic.
    sid       = "UseTheAlertsTopicKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "age_check" {
  name   = "check-secret-age"
  role   = aws_iam_role.age_check.id
  policy = data.aws_iam_policy_document.age_check.json
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    sid     = "SchedulerOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${local.name}-age-check-scheduler"
  description        = "kb-mcp ${var.environment}: lets EventBridge Scheduler start the age check task"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "RunTheAgeCheckTask"
    actions   = ["ecs:RunTask"]
    resources = ["arn:aws:ecs:${var.region}:${local.account_id}:task-definition/${aws_ecs_task_definition.server.family}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    # The schedule's input is encrypted with the module's key.
    sid       = "DecryptTheScheduleInput"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
  }

  statement {
    sid       = "PassTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.age_check.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "run-age-check"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "age_check" {
  name                = "${local.name}-age-check"
  description         = "kb-mcp ${var.environment}: kb-mcp secrets age (30-day rotation policy)"
  schedule_expression = var.age_check_schedule
  kms_key_arn         = local.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = local.cluster_arn
    role_arn = aws_iam_role.scheduler.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.server.arn
      launch_type         = "FARGATE"
      group               = "${local.name}-age-check"

      network_configuration {
        subnets          = var.subnets
        security_groups  = [aws_security_group.tasks.id]
        assign_public_ip = false
      }
    }

    # The RunTask overrides: the age command instead of `serve`, under the age check's role.
    input = jsonencode({
      taskRoleArn = aws_iam_role.age_check.arn
      containerOverrides = [
        {
          name    = local.container_name
          command = ["kb-mcp", "secrets", "age", "--sns-topic-arn", aws_sns_topic.alerts.arn]
        }
      ]
    })

    retry_policy {
      maximum_retry_attempts = 2
    }
  }
}
