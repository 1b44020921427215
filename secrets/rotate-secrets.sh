#!/usr/bin/env bash
# Rotate a secret with the four steps of AWS rotation (create, set, test, finish).
# Resumable: rerun the same command after a failure. Thin wrapper around
# `kb-mcp secrets rotate`; all arguments pass through, e.g.
#   secrets/rotate-secrets.sh postgres --env prod --dry-run
#   secrets/rotate-secrets.sh postgres --env prod
#   NEW_OPENAI_KEY=... secrets/rotate-secrets.sh openai --env prod --new-value-from-env NEW_OPENAI_KEY
# (or pipe the new key on stdin; never pass it as an argument). See secrets/RUNBOOK.md.
# Exit code: 0 done, 1 a step failed (AWSCURRENT unchanged unless the last step ran), 2 bad usage.
set -euo pipefail

if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets rotate "$@"
fi
exec "${PYTHON:-python3}" -m kb_mcp secrets rotate "$@"
