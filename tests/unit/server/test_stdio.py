"""stdio: a malformed line gets a JSON-RPC error (id null); the session carries on."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

import anyio

from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.server.context import AppContext
from kb_mcp.server.stdio import run_stdio
from kb_mcp.server.tools import build_mcp_server
from tests.unit.server.test_tools import ClosedSource


class _Backend:
    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        return [[1.0] * 4 for _ in texts]


async def test_malformed_lines_get_parse_and_invalid_request_errors() -> None:
    """Not JSON: -32700; JSON but not JSON-RPC: -32600; a following request is answered."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    lines = ["this is not json", '{"hello": "world"}', json.dumps(initialize)]
    stdin = anyio.wrap_file(io.StringIO("\n".join(lines) + "\n"))
    out = io.StringIO()
    context = AppContext(db=ClosedSource(), embedder=Embedder(_Backend(), model="m", dimensions=4))
    with anyio.fail_after(10):
        await run_stdio(build_mcp_server(context), stdin=stdin, stdout=anyio.wrap_file(out))
    answers = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    errors = [a for a in answers if "error" in a]
    assert [(e["id"], e["error"]["code"]) for e in errors] == [(None, -32700), (None, -32600)]
    assert any(a.get("id") == 1 and "result" in a for a in answers)
