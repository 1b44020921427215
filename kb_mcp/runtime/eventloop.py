"""The event loop `kb-mcp serve` runs on: uvloop when installed, else asyncio's own.

uvicorn picks uvloop by itself only when it creates the loop (`uvicorn.run`); `kb-mcp
serve` creates its loop first (signals, the supervisor), so it asks here. uvloop is a base
dependency on Linux and macOS (measured with `bench/bench_mcp.py`: +5 % on the SDK floor at
16 clients, +17 % at 64); where its wheel is missing (Windows) the import fails and
asyncio's loop is used, with no other change.

The HTTP parser stays h11, chosen rather than httptools: h11's incomplete-event cap is the
request-head size limit (`kb_mcp.server.limits.HttpLimits.max_header_bytes`), which
uvicorn's httptools protocol does not enforce, and httptools measured no faster on the
product path (`kb_search` 0.42 of the floor with uvloop+httptools, 0.45 with asyncio+h11,
one run at 16 clients).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["event_loop_factory"]


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """`uvloop.new_event_loop` when uvloop is importable; None means asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
