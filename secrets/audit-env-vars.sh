#!/usr/bin/env bash
# Secret audit of this repository: the working tree (every .env* file included, even
# git-ignored ones), the last N commits, and the .env policy. Thin wrapper around
# `kb-mcp secrets audit`; all arguments pass through, e.g.
#   secrets/audit-env-vars.sh                      # tree + last 100 commits, writes the report
#   secrets/audit-env-vars.sh --history-depth 500 --json
#   secrets/audit-env-vars.sh --no-report --history-depth 0 --files path/a.py path/b.env
# Exit code: 0 clean, 1 findings, 2 bad usage. Relative --files paths are taken from the
# repository root (the script changes into it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets audit "$@"
fi
exec "${PYTHON:-python3}" -m kb_mcp secrets audit "$@"
