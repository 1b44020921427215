#!/usr/bin/env bash
# Can this identity read and use every secret? Fetches and validates each one as the
# server would, logs in to PostgreSQL with the credentials, reports VersionIds and ages
# (never a value). Thin wrapper around `kb-mcp secrets verify`; all arguments pass
# through, e.g.
#   secrets/test-secret-retrieval.sh --env prod
#   secrets/test-secret-retrieval.sh --env dev --probe-openai --json
# Exit code: 0 every secret fine, 1 any problem.
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
    exec "$PYTHON" -m kb_mcp secrets verify "$@"
fi
if [[ -x "$root/.venv/bin/kb-mcp" ]]; then
    exec "$root/.venv/bin/kb-mcp" secrets verify "$@"
fi
if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets verify "$@"
fi
echo "test-secret-retrieval.sh: kb-mcp is not installed: python3 -m venv .venv && .venv/bin/pip install -e ./secretswap -e '.[local]' (or set PYTHON)" >&2
exit 2
