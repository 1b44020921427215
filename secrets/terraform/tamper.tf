# Tamper alerts: every call that deletes, writes or unprotects a kb-mcp secret, and every
# GetSecretValue by a principal that is not one of its readers, becomes a message on the
# alerts topic naming the call, the secret, the principal and the runbook section.
#
# EventBridge sees these calls through CloudTrail: a trail must log the account's
# management events in this region. var.cloudtrail_trail_name names one that already does
# (e.g. the organisation trail); otherwise the module creates one, with its own bucket.
# GetSecretValue is a read-only event, which reaches a rule only in the state
# ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS.

locals {
  # The primary's trail is multi-region: a failover region's rules see its events too.
  create_trail = var.cloudtrail_trail_name == null && local.is_primary
  trail_name   = local.create_trail ? "${local.name}-secrets" : var.cloudtrail_trail_name

  tampering_calls = [
    "DeleteSecret",
    "PutSecretValue",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
    "RemoveRegionsFromReplication",
    "StopReplicationToReplica",
    "RotateSecret",
    "CancelRotateSecret",
    "RestoreSecret",
  ]

  # A secret is named in requestParameters.secretId by name or by ARN.
  secret_id_patterns = flatten([for name in values(local.secret_names) : [{ prefix = name }, { wildcard = "arn:aws:secretsmanager:*:secret:${name}-*" }]])

  tamper_input_paths = {
    call      = "$.detail.eventName"
    secret    = "$.detail.requestParameters.secretId"
    principal = "$.detail.userIdentity.arn"
    error     = "$.detail.errorCode"
    region    = "$.detail.awsRegion"
    time      = "$.time"
  }
}

resource "aws_cloudwatch_event_rule" "secret_tampering" {
  name        = "${local.name}-secret-tampering"
  description = "kb-mcp ${var.environment}: a call that deletes, writes or unprotects a kb-mcp secret"
  event_pattern = jsonencode({
    source        = ["aws.secretsmanager"]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource       = ["secretsmanager.amazonaws.com"]
      eventName         = local.tampering_calls
      requestParameters = { secretId = local.secret_id_patterns }
    }
  })
}

resource "aws_cloudwatch_event_rule" "unexpected_reader" {
  name        = "${local.name}-unexpected-secret-reader"
  description = "kb-mcp ${var.environment}: GetSecretValue on a kb-mcp secret by a principal that is not one of its readers"
  # Read-only management events reach only rules in this state.
  state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  event_pattern = jsonencode({
    source        = ["aws.secretsmanager"]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource       = ["secretsmanager.amazonaws.com"]
      eventName         = ["GetSecretValue", "BatchGetSecretValue"]
      requestParameters = { secretId = local.secret_id_patterns }
      # A role session whose role is not a reader, or any principal that is not a role.
      "$or" = [
        { userIdentity = { sessionContext = { sessionIssuer = { arn = [{ "anything-but" = concat([var.operator_role_arn], local.secret_reader_role_arns) }] } } } },
        { userIdentity = { type = [{ "anything-but" = ["AssumedRole"] }] } },
      ]
    }
  })
}

resource "aws_cloudwatch_event_target" "secret_tampering" {
  rule = aws_cloudwatch_event_rule.secret_tampering.name
  arn  = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths    = local.tamper_input_paths
    input_template = "\"kb-mcp ${var.environment}: <call> on secret <secret> by <principal> in <region> at <time> (error: <error>). Expected only from the operator role or the rotation function. Runbook: ${var.runbook_url}#tamper-alerts\""
  }
}

resource "aws_cloudwatch_event_target" "unexpected_reader" {
  rule = aws_cloudwatch_event_rule.unexpected_reader.name
  arn  = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths    = local.tamper_input_paths
    input_template = "\"kb-mcp ${var.environment}: <call> on secret <secret> by unexpected principal <principal> in <region> at <time> (error: <error>). Runbook: ${var.runbook_url}#tamper-alerts\""
  }
}

# The alerts topic's policy: the account (CloudWatch alarms, `kb-mcp secrets age`) and these
# two rules may publish. It replaces the topic's default policy, so it restates the owner's.
data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "AccountPublishes"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "TamperRulesPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.secret_tampering.arn, aws_cloudwatch_event_rule.unexpected_reader.arn]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

# --- The trail, unless var.cloudtrail_trail_name names one ---

resource "aws_s3_bucket" "trail" {
  #checkov:skip=CKV_AWS_144:the trail's own copy; the organisation's archive (var.cloudtrail_trail_name) is where cross-region copies belong
  #checkov:skip=CKV_AWS_18:access logs of the audit bucket would need a second bucket whose own logs need a third; the trail records every API call on it
  #checkov:skip=CKV2_AWS_62:nothing consumes object events of the trail bucket; alerts come from EventBridge
  count = local.create_trail ? 1 : 0

  bucket_prefix = "${local.name}-trail-"
}

resource "aws_s3_bucket_public_access_block" "trail" {
  count = local.create_trail ? 1 : 0

  bucket                  = aws_s3_bucket.trail[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  rule {
    id     = "expire-after-retention"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "trail_bucket" {
  count = local.create_trail ? 1 : 0

  statement {
    sid       = "CloudTrailChecksTheAcl"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.trail[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = ["arn:aws:cloudtrail:${var.region}:${local.account_id}:trail/${local.trail_name}"]
    }
  }

  statement {
    sid       = "CloudTrailWrites"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.trail[0].arn}/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = ["arn:aws:cloudtrail:${var.region}:${local.account_id}:trail/${local.trail_name}"]
    }
  }

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.trail[0].arn, "${aws_s3_bucket.trail[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  policy = data.aws_iam_policy_document.trail_bucket[0].json
}

resource "aws_cloudtrail" "secrets" {
  #checkov:skip=CKV2_AWS_10:alerts come from EventBridge rules on the trail's events (above), not from a CloudWatch Logs metric filter
  #checkov:skip=CKV_AWS_252:the tamper rules publish the events that matter to the alerts topic; a notification per log file delivered is noise
  count = local.create_trail ? 1 : 0

  name                          = local.trail_name
  s3_bucket_name                = aws_s3_bucket.trail[0].id
  kms_key_id                    = local.kms_key_arn
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true

  event_selector {
    read_write_type           = "All"
    include_management_events = true
  }

  depends_on = [aws_s3_bucket_policy.trail]
}
