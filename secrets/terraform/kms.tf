# The customer-managed key for what checkov asks to encrypt with one: the service's log
# group and the alerts topics. (The secrets keep the AWS-managed key: secrets.tf.)
#
# Created here unless var.kms_key_arn names an existing key (whose policy must then allow
# the same services). The billing topic lives in us-east-1 and a key is regional: outside
# us-east-1 a second key is created there for it.

locals {
  kms_key_arn         = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn
  billing_kms_key_arn = var.region == "us-east-1" ? local.kms_key_arn : (local.billing_alarm ? aws_kms_key.billing[0].arn : null)
  account_id          = data.aws_caller_identity.current.account_id
}

data "aws_iam_policy_document" "kms" {
  # A key policy: its "*" resource is the key itself, and the account-root statement is the
  # standard one that hands the key's use to IAM policies.
  #checkov:skip=CKV_AWS_111:a key policy's "*" resource is the key it is attached to
  #checkov:skip=CKV_AWS_356:a key policy's "*" resource is the key it is attached to
  #checkov:skip=CKV_AWS_109:the account-root statement is AWS's default key policy, delegating to IAM
  statement {
    # The account's IAM policies decide who else may use the key (the age check's role).
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsTheServiceLogGroup"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${var.region}:${local.account_id}:log-group:${local.log_group_name}"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopics"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

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
}

data "aws_iam_policy_document" "kms_tamper" {
  source_policy_documents = [data.aws_iam_policy_document.kms.json]

  statement {
    sid       = "EventBridgePublishesTamperAlertsToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "CloudTrailEncryptsTheTrail"
    actions   = ["kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:cloudtrail:arn"
      values   = ["arn:aws:cloudtrail:*:${local.account_id}:trail/*"]
    }
  }
}

resource "aws_kms_key" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "kb-mcp ${var.environment}: service logs, alert topics, the trail, the rotation function"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_tamper.json
}

resource "aws_kms_alias" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

resource "aws_kms_key" "billing" {
  count    = local.billing_alarm && var.region != "us-east-1" ? 1 : 0
  provider = aws.us_east_1

  description             = "kb-mcp ${var.environment}: the billing alert topic (us-east-1)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}
