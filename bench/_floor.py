"""The floor of `bench_mcp`: kb-mcp's own `kb_search` tool, minus the search, on the same SDK.

    python -m bench._floor --port P [--minimal]

The tool has `kb_search`'s signature (so the same input schema and argument parsing),
description and result type (`kb_mcp.server.results.SearchResult`, so the same output
schema the client validates and the same serialisation), and returns five fixed hits of
the size `kb_search` returns for `bench_mcp`'s documents (400-character snippets, both
signals matched) without touching anything. Same transport settings as `kb-mcp serve
--transport http` (streamable HTTP at `/mcp`, stateless, JSON responses, the SDK's Host
check off), same uvicorn configuration and the same event loop choice
(`kb_mcp.runtime.eventloop`), on a listening socket made the same way; `/readyz` answers
200 once it serves. Whatever a request costs here is the SDK's and uvicorn's own cost for
this tool. SIGTERM stops it.

`--minimal` serves instead the floor earlier runs used: a five-field hit model and a
three-argument signature (a smaller output schema for the client to check), so figures
against either floor can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import socket
import sys
import typing
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kb_mcp.runtime.eventloop import event_loop_factory
from kb_mcp.server import read_tools as tools
from kb_mcp.server.results import SearchHit, SearchResult

_SNIPPET = " ".join(f"passage 7 sentence {i} about credentials and rotation." for i in range(8))
_HITS = SearchResult(
    hits=[
        SearchHit(
            id=f"00000000-0000-4000-8000-00000000000{n}",
            title=f"seed document {n}",
            snippet=_SNIPPET[: _SNIPPET.rfind(" ", 0, 400)] + "\u2026",
            score=round(0.9 - n / 20, 6),
            tags=["seed", f"group-{n}"],
            matched=["vector", "keyword"],
            vector_score=round(0.8 - n / 20, 6),
            keyword_score=round(0.1 - n / 100, 6),
            start=0,
            end=_SNIPPET.rfind(" ", 0, 400),
            highlights=[[0, 7]],
        )
        for n in range(5)
    ]
)


async def kb_search(*_args: Any, **_kwargs: Any) -> SearchResult:
    """Five fixed hits, whatever the query."""
    return _HITS


# kb_search's own signature (context parameter included) and description: the SDK builds
# the same argument model, input and output schemas from them.
kb_search.__signature__ = inspect.signature(tools.kb_search, eval_str=True)  # type: ignore[attr-defined]
kb_search.__annotations__ = typing.get_type_hints(tools.kb_search, include_extras=True)
kb_search.__doc__ = tools.kb_search.__doc__


class _MinimalHit(BaseModel):
    id: str
    title: str
    snippet: str
    score: float
    tags: list[str]


class _MinimalHits(BaseModel):
    hits: list[_MinimalHit]


_MINIMAL_HITS = _MinimalHits(
    hits=[
        _MinimalHit(
            id=f"00000000-0000-4000-8000-00000000000{n}",
            title=f"document {n}",
            snippet="Alternate between two login roles so the old password keeps working. " * 3,
            score=round(0.9 - n / 20, 6),
            tags=["ops"],
        )
        for n in range(5)
    ]
)


async def minimal_kb_search(
    query: Annotated[str, Field(min_length=1, max_length=2000)],
    limit: Annotated[int, Field(ge=1, le=50)] = 5,
    tags: list[str] | None = None,
) -> _MinimalHits:
    """Five fixed hits, whatever the query."""
    return _MINIMAL_HITS


def build_floor(*, minimal: bool = False) -> MCPServer[object]:
    server: MCPServer[object] = MCPServer("floor")
    tool = minimal_kb_search if minimal else kb_search
    server.add_tool(tool, name="kb_search", annotations=ToolAnnotations(read_only_hint=True))
    return server


async def readyz(_request: Request) -> Response:
    return JSONResponse({"status": "ready"})


async def _serve(port: int, *, minimal: bool) -> None:
    app = build_floor(minimal=minimal).streamable_http_app(
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
    parser.add_argument("--minimal", action="store_true", help="the earlier, smaller floor")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_serve(args.port, minimal=bool(args.minimal)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
