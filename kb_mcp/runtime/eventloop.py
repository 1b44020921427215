"""The event loop `kb-mcp serve` runs on: uvloop when installed, else asyncio's own.

uvicorn picks uvloop and httptools by itself only when it creates the loop
(`uvicorn.run`); `kb-mcp serve` creates its loop first (signals, the supervisor), so it
asks here. httptools needs nothing of ours: uvicorn's default `http="auto"` takes it when
it is importable and falls back to h11. Measured with `bench/bench_mcp.py` (README,
"Measured"): both are base dependencies on Linux and macOS; where a wheel is missing
(Windows has no uvloop) the import fails and asyncio's loop is used, with no other change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["event_loop_factory", "http_parser_name"]


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """`uvloop.new_event_loop` when uvloop is importable; None means asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def http_parser_name() -> str:
    """The HTTP parser uvicorn's `http="auto"` will use: httptools if importable, else h11."""
    try:
        import httptools  # noqa: F401 - only whether it imports matters
    except ImportError:
        return "h11"
    return "httptools"
