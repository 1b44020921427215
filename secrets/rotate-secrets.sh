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

# The interpreter kb-mcp was installed into: $PYTHON if set, else this repository's .venv
# (the README's install; no need to activate it), else kb-mcp on PATH (the container
# image). A bare system python3 lacks the dependencies. Beside a running `kb-mcp dev` of
# this repository, the command finds its stack from any folder; it names its target on stderr.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${KB_MCP_STACK_DIR:-}" && ! -d .kb-mcp && -d "$root/.kb-mcp" ]]; then
    export KB_MCP_STACK_DIR="$root/.kb-mcp"
fi
if [[ -n "${PYTHON:-}" ]]; then
    exec "$PYTHON" -m kb_mcp secrets rotate "$@"
fi
if [[ -x "$root/.venv/bin/kb-mcp" ]]; then
    exec "$root/.venv/bin/kb-mcp" secrets rotate "$@"
fi
if command -v kb-mcp >/dev/null 2>&1; then
    exec kb-mcp secrets rotate "$@"
fi
echo "rotate-secrets.sh: kb-mcp is not installed: python3 -m venv .venv && .venv/bin/pip install -e ./secretswap -e '.[local]' (or set PYTHON)" >&2
exit 2
