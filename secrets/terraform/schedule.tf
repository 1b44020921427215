# The scheduled age check (the story's AC7: alerts and audits run by themselves).
#
# EventBridge Scheduler runs the server's own task definition on var.age_check_schedule
# with a command override, `kb-mcp secrets age --sns-topic-arn <alerts>`, under a role of its
# own: DescribeSecret and ListSecretVersionIds on the secrets (all `age` calls) and
# sns:Publish on the alerts topic. Its SecretAgeDays EMF lines go to the service log group,
# which feeds the SecretAgeDays alarm (alerts.tf); overdue secrets are also published to
# the topic directly. How to see its last run: ../RUNBOOK.md, "The scheduled age check".

resource "aws_iam_role" "age_check" {
  name               = "${local.iam_name}-age-check"
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
  name               = "${local.iam_name}-age-check-scheduler"
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
    # The schedule's input and the dead-letter queue are encrypted with the module's key.
    sid       = "UseTheModuleKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }

  statement {
    sid       = "DeadLetterUndeliveredChecks"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.age_check_dlq.arn]
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

    # A start that fails (no capacity, a throttled RunTask, a missing permission) is
    # retried for an hour, then kept on the dead-letter queue; both raise an alarm below.
    retry_policy {
      maximum_retry_attempts       = 5
      maximum_event_age_in_seconds = 3600
    }

    dead_letter_config {
      arn = aws_sqs_queue.age_check_dlq.arn
    }
  }
}

# Events the scheduler could not deliver, kept 14 days for a look (RUNBOOK.md: the
# scheduled age check).
resource "aws_sqs_queue" "age_check_dlq" {
  name                      = "${local.name}-age-check-dlq"
  message_retention_seconds = 1209600
  kms_master_key_id         = local.kms_key_arn
}

data "aws_iam_policy_document" "age_check_dlq" {
  statement {
    sid       = "SchedulerDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.age_check_dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = ["arn:aws:scheduler:${var.region}:${local.account_id}:schedule/default/${local.name}-age-check"]
    }
  }
}

resource "aws_sqs_queue_policy" "age_check_dlq" {
  queue_url = aws_sqs_queue.age_check_dlq.id
  policy    = data.aws_iam_policy_document.age_check_dlq.json
}

resource "aws_cloudwatch_metric_alarm" "age_check_failed_invocations" {
  alarm_name          = "${local.name}-age-check-failed-invocations"
  alarm_description   = "The scheduled age check could not be started (RunTask failed after retries). Runbook: ${var.runbook_url}#the-scheduled-age-check"
  namespace           = "AWS/Scheduler"
  metric_name         = "TargetErrorCount"
  dimensions          = { ScheduleGroup = "default" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "age_check_dead_letters" {
  alarm_name          = "${local.name}-age-check-dead-letters"
  alarm_description   = "A scheduled age check was given up and sits on the dead-letter queue ${aws_sqs_queue.age_check_dlq.name}. Runbook: ${var.runbook_url}#the-scheduled-age-check"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.age_check_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}
