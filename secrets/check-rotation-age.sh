#!/usr/bin/env bash
# The 30-day rotation policy: report when each secret's AWSCURRENT version was written,
# flag those older than the limit, alert via SNS and/or a Slack-compatible webhook with
# the runbook link, print SecretAgeDays as CloudWatch EMF. Thin wrapper around
# `kb-mcp secrets age`; all arguments pass through, e.g.
#   secrets/check-rotation-age.sh --env prod
#   secrets/check-rotation-age.sh --env prod --sns-topic-arn "$ALERTS_TOPIC_ARN" \
#       --slack-webhook-url-env SLACK_WEBHOOK_URL --runbook-url "$RUNBOOK_URL"
# Exit code: 0 all fresh, 1 any secret overdue or unreadable (or an alert not delivered).
set -euo pipefail

if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets age "$@"
fi
exec "${PYTHON:-python3}" -m kb_mcp secrets age "$@"
