"""`kb-mcp import` and `export` load no server code: most of a short command's time was imports."""

from __future__ import annotations

import json
import subprocess
import sys

# What the import command loads: its parser, then what its handler imports before booting.
_LOADS = """
import json, sys
from kb_mcp.cli import build_parser
build_parser(["import", "x"])
import kb_mcp.ops.bulk.importer, kb_mcp.runtime.wiring, kb_mcp.runtime.serve
import kb_mcp.runtime.supervisor, kb_mcp.db.vectors, kb_mcp.db.migrate
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_bulk_commands_import_neither_the_mcp_sdk_nor_the_http_stack() -> None:
    """Neither the MCP SDK, Starlette nor uvicorn is imported by the bulk commands' code."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADS], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert {"kb_mcp", "asyncpg", "aioboto3", "openai"} <= loaded
    assert not {"mcp", "mcp_types", "starlette", "uvicorn", "sse_starlette"} & loaded
