#!/usr/bin/env bash
# Can this identity read and use every secret? Fetches and validates each one as the
# server would, logs in to PostgreSQL with the credentials, reports VersionIds and ages
# (never a value). Thin wrapper around `kb-mcp secrets verify`; all arguments pass
# through, e.g.
#   secrets/test-secret-retrieval.sh --env prod
#   secrets/test-secret-retrieval.sh --env dev --probe-openai --json
# Exit code: 0 every secret fine, 1 any problem.
set -euo pipefail

if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets verify "$@"
fi
exec "${PYTHON:-python3}" -m kb_mcp secrets verify "$@"
