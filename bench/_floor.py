"""The floor of `bench_mcp`: a trivial `kb_search`-shaped tool on the same MCP SDK.

    python -m bench._floor --port P

Same transport settings as `kb-mcp serve --transport http` (streamable HTTP at `/mcp`,
stateless, JSON responses, the SDK's Host check off), same uvicorn configuration and the
same event loop choice (`kb_mcp.runtime.eventloop`), on a listening socket made the same
way; `/readyz` answers 200 once it serves. The tool returns five fixed hits without
touching anything: whatever a request costs here is the SDK's and uvicorn's own cost.
SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from typing import Annotated

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kb_mcp.runtime.eventloop import event_loop_factory


class Hit(BaseModel):
    id: str
    title: str
    snippet: str
    score: float
    tags: list[str]


class Hits(BaseModel):
    hits: list[Hit]


_HITS = Hits(
    hits=[
        Hit(
            id=f"00000000-0000-4000-8000-00000000000{n}",
            title=f"document {n}",
            snippet="Alternate between two login roles so the old password keeps working. " * 3,
            score=round(0.9 - n / 20, 6),
            tags=["ops"],
        )
        for n in range(5)
    ]
)


def build_floor() -> MCPServer[object]:
    server: MCPServer[object] = MCPServer("floor")

    @server.tool()
    async def kb_search(
        query: Annotated[str, Field(min_length=1, max_length=2000)],
        limit: Annotated[int, Field(ge=1, le=50)] = 5,
        tags: list[str] | None = None,
    ) -> Hits:
        """Five fixed hits, whatever the query."""
        return _HITS

    return server


async def readyz(_request: Request) -> Response:
    return JSONResponse({"status": "ready"})


async def _serve(port: int) -> None:
    app = build_floor().streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.append(Route("/readyz", readyz, methods=["GET"]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # The HTTP parser kb-mcp serve uses (h11: kb_mcp.runtime.eventloop), not uvicorn's "auto".
    config = uvicorn.Config(app, log_config=None, lifespan="on", access_log=False, http="h11")
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
