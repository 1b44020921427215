# Alarms on the metrics kb-mcp writes as CloudWatch Embedded Metric Format lines on its
# log stream (namespace KbMcp, dimensions Service and Environment), and a billing alarm.
# Every alarm notifies the alerts topic; ../RUNBOOK.md says what to do for each.

resource "aws_sns_topic" "alerts" {
  # `kb-mcp secrets age` publishes here too (the scheduled age check's role and the
  # operator policy allow sns:Publish on it). Encrypted with the module's key (kms.tf),
  # whose policy lets CloudWatch alarms publish.
  name              = "${local.name}-alerts"
  kms_master_key_id = local.kms_key_arn
}

resource "aws_sns_topic_subscription" "alerts_email" {
  count = var.alert_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_cloudwatch_metric_alarm" "rotation_failures" {
  alarm_name          = "${local.name}-rotation-failures"
  alarm_description   = "A task rejected a rotated secret and kept the old one. Runbook: ${var.runbook_url}#rotationfailures-any"
  namespace           = local.metric_namespace
  metric_name         = "RotationFailures"
  dimensions          = local.metric_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "secret_age" {
  alarm_name          = "${local.name}-secret-age"
  alarm_description   = "A secret has not been rotated for more than ${var.secret_age_days_threshold} days, or no age was reported for 30 hours (the scheduled check stopped). Runbook: ${var.runbook_url}#secretagedays-over-30"
  namespace           = local.metric_namespace
  metric_name         = "SecretAgeDays"
  dimensions          = local.metric_dimensions
  statistic           = "Maximum"
  period              = 21600
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = var.secret_age_days_threshold
  comparison_operator = "GreaterThanThreshold"
  # Missing data is breaching: a check that stopped running is not "fine". With a daily
  # check, each 30-hour window holds a report; five silent 6-hour periods in a row alarm.
  treat_missing_data = "breaching"
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "refresh_errors" {
  alarm_name          = "${local.name}-refresh-errors"
  alarm_description   = "Secret refreshes have failed for 15 minutes: tasks serve cached values that will go stale. Runbook: ${var.runbook_url}#refresherrors-sustained"
  namespace           = local.metric_namespace
  metric_name         = "RefreshErrors"
  dimensions          = local.metric_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

# Billing: metrics exist only in us-east-1 and only once "Receive Billing Alerts" is on in
# the account's billing preferences. The alarm's topic must be in us-east-1 as well.
resource "aws_sns_topic" "billing_alerts" {
  count    = local.billing_alarm ? 1 : 0
  provider = aws.us_east_1

  name              = "${local.name}-billing-alerts"
  kms_master_key_id = local.billing_kms_key_arn
}

resource "aws_sns_topic_subscription" "billing_email" {
  count    = local.billing_alarm && var.alert_email != null ? 1 : 0
  provider = aws.us_east_1

  topic_arn = aws_sns_topic.billing_alerts[0].arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_cloudwatch_metric_alarm" "secrets_manager_billing" {
  count    = local.billing_alarm ? 1 : 0
  provider = aws.us_east_1

  alarm_name        = "${local.name}-secrets-manager-billing"
  alarm_description = "Secrets Manager charges this month passed USD ${var.billing_threshold_usd} (COST.md: projection and how to confirm it)."
  namespace         = "AWS/Billing"
  metric_name       = "EstimatedCharges"
  dimensions = {
    Currency    = "USD"
    ServiceName = "AWSSecretsManager"
  }
  statistic           = "Maximum"
  period              = 21600
  evaluation_periods  = 1
  threshold           = var.billing_threshold_usd
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.billing_alerts[0].arn]
}
