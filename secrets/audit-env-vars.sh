#!/usr/bin/env bash
# Secret audit of this repository: the working tree (every .env* file included, even
# git-ignored ones), the last N commits, and the .env policy. Thin wrapper around
# `kb-mcp secrets audit`; all arguments pass through, e.g.
#   secrets/audit-env-vars.sh                      # tree + last 100 commits, nothing written
#   secrets/audit-env-vars.sh --report /tmp/audit.md   # also write a Markdown report
#   secrets/audit-env-vars.sh --history-depth 500 --json
#   secrets/audit-env-vars.sh --no-report --history-depth 0 --files path/a.py path/b.env
# Exit code: 0 clean, 1 findings, 2 bad usage. Relative --files paths are taken from the
# repository root (the script changes into it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The interpreter kb-mcp was installed into: $PYTHON if set, else the repository's .venv
# (the README's install), else kb-mcp on PATH. A bare system python3 lacks the dependencies.
if [[ -n "${PYTHON:-}" ]]; then
    exec "$PYTHON" -m kb_mcp secrets audit "$@"
fi
if [[ -x .venv/bin/kb-mcp ]]; then
    exec .venv/bin/kb-mcp secrets audit "$@"
fi
if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets audit "$@"
fi
echo "audit-env-vars.sh: kb-mcp is not installed: python3 -m venv .venv && .venv/bin/pip install -e ./secretswap -e '.[local]' (or set PYTHON)" >&2
exit 2
