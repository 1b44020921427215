"""Find a running `kb-mcp dev` for the operations commands run beside it.

`kb-mcp dev` writes `<data>/stack.json` (0600) while it serves: its MCP URL, its pid and
the environment that points AWS clients at its Secrets Manager emulator (per-run
credentials that only that emulator accepts). `kb-mcp secrets verify|seed|age|rotate` and
`kb-mcp drill` use it when it belongs to a live process and no target was chosen
otherwise (`AWS_ENDPOINT_URL` set, or `--env staging|prod`); they say so in one line on
stderr. `KB_MCP_STACK_DIR` names another data folder (default `.kb-mcp`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_STACK_DIR",
    "STACK_ENVIRONMENT",
    "STACK_FILE",
    "LocalStack",
    "find_local_stack",
    "use_local_stack",
]

STACK_FILE = "stack.json"
DEFAULT_STACK_DIR = Path(".kb-mcp")
_STACK_DIR_VARIABLE = "KB_MCP_STACK_DIR"
STACK_ENVIRONMENT = frozenset(
    {
        "KB_MCP_ENV",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_EC2_METADATA_DISABLED",
        "OPENAI_BASE_URL",
        "SECRETS_CACHE_TTL_SECONDS",
    }
)


@dataclass(frozen=True)
class LocalStack:
    """A running `kb-mcp dev`, as its stack file describes it."""

    folder: Path
    mcp_url: str
    pid: int
    environment: Mapping[str, str]
    generated_openai_keys: bool
    """The stack's embeddings endpoint accepts any key the OpenAI secret holds."""

    def __repr__(self) -> str:
        return f"LocalStack(folder={str(self.folder)!r}, mcp_url={self.mcp_url!r}, pid={self.pid})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stack_dir(folder: Path | None = None) -> Path:
    """The data folder to look in: `folder`, else `KB_MCP_STACK_DIR`, else `.kb-mcp`."""
    if folder is not None:
        return folder
    return Path(os.environ.get(_STACK_DIR_VARIABLE) or DEFAULT_STACK_DIR)


def find_local_stack(folder: Path | None = None) -> LocalStack | None:
    """The stack served from `folder` right now, or None (no file, unreadable, or dead pid)."""
    where = stack_dir(folder)
    try:
        data: Any = json.loads((where / STACK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid, url, environment = data.get("pid"), data.get("mcp_url"), data.get("environment")
    if not isinstance(pid, int) or not isinstance(url, str) or not isinstance(environment, dict):
        return None
    if not _alive(pid):
        return None
    env = {k: str(v) for k, v in environment.items() if k in STACK_ENVIRONMENT}
    return LocalStack(where, url, pid, env, data.get("openai_keys") == "secret")


def use_local_stack(
    command: str, *, env: str | None = None, folder: Path | None = None
) -> LocalStack | None:
    """Point this process's AWS and OpenAI settings at a running local stack, if it applies.

    Applies when a stack is running and no other target was chosen: `AWS_ENDPOINT_URL`
    unset and `env` (the command's `--env`) unset or dev. Says so on stderr.
    """
    if os.environ.get("AWS_ENDPOINT_URL") or (
        env is not None and env not in ("dev", "development")
    ):
        return None
    stack = find_local_stack(folder)
    if stack is None:
        return None
    os.environ.update(stack.environment)
    sys.stderr.write(
        f"kb-mcp {command}: using the local stack of kb-mcp dev (pid {stack.pid}, "
        f"{stack.folder / STACK_FILE}); set AWS_ENDPOINT_URL or pass --env to target another\n"
    )
    return stack
