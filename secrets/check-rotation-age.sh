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

# The interpreter kb-mcp was installed into: $PYTHON if set, else this repository's .venv
# (the README's install; no need to activate it), else kb-mcp on PATH (the container
# image). A bare system python3 lacks the dependencies. Beside a running `kb-mcp dev` of
# this repository, the command finds its stack from any folder; it names its target on stderr.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${KB_MCP_STACK_DIR:-}" && ! -d .kb-mcp && -d "$root/.kb-mcp" ]]; then
    export KB_MCP_STACK_DIR="$root/.kb-mcp"
fi
if [[ -n "${PYTHON:-}" ]]; then
    exec "$PYTHON" -m kb_mcp secrets age "$@"
fi
if [[ -x "$root/.venv/bin/kb-mcp" ]]; then
    exec "$root/.venv/bin/kb-mcp" secrets age "$@"
fi
if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets age "$@"
fi
echo "check-rotation-age.sh: kb-mcp is not installed: python3 -m venv .venv && .venv/bin/pip install -e ./secretswap -e '.[local]' (or set PYTHON)" >&2
exit 2
