#!/usr/bin/env bash
# Create the development secrets in moto or LocalStack (set AWS_ENDPOINT_URL), from
# environment variables (OPENAI_API_KEY and DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME
# by default). Idempotent; refuses production. Thin wrapper around `kb-mcp secrets seed`;
# all arguments pass through, e.g.
#   KB_MCP_ENV=development AWS_ENDPOINT_URL=http://localhost:4566 secrets/setup-local-secrets.sh
#   secrets/setup-local-secrets.sh --env dev --if-missing --generate-openai-key
# Exit code: 0 seeded, 1 refused or failed, 2 bad usage.
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
    exec "$PYTHON" -m kb_mcp secrets seed "$@"
fi
if [[ -x "$root/.venv/bin/kb-mcp" ]]; then
    exec "$root/.venv/bin/kb-mcp" secrets seed "$@"
fi
if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets seed "$@"
fi
echo "setup-local-secrets.sh: kb-mcp is not installed: python3 -m venv .venv && .venv/bin/pip install -e ./secretswap -e '.[local]' (or set PYTHON)" >&2
exit 2
