#!/usr/bin/env bash
# Create the development secrets in moto or LocalStack (set AWS_ENDPOINT_URL), from
# environment variables (OPENAI_API_KEY and DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME
# by default). Idempotent; refuses production. Thin wrapper around `kb-mcp secrets seed`;
# all arguments pass through, e.g.
#   KB_MCP_ENV=development AWS_ENDPOINT_URL=http://localhost:4566 secrets/setup-local-secrets.sh
#   secrets/setup-local-secrets.sh --env dev --if-missing --generate-openai-key
# Exit code: 0 seeded, 1 refused or failed, 2 bad usage.
set -euo pipefail

if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets seed "$@"
fi
exec "${PYTHON:-python3}" -m kb_mcp secrets seed "$@"
