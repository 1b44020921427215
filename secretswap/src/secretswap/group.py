"""`background_group()`: the `asyncio.TaskGroup` that owns drains, shaped for a lifespan.

A plain `async with asyncio.TaskGroup()` wraps an exception raised by its body in an
`ExceptionGroup`, which would turn a clean `DatabaseAuthError` at boot into something no
caller catches. This group lets the body's exception through unchanged and, on the way
out (clean or not), waits for its children: drains are bounded by their timeout and
never raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["background_group"]


@asynccontextmanager
async def background_group() -> AsyncIterator[asyncio.TaskGroup]:
    """A TaskGroup whose exit waits for its children and re-raises the body's own error."""
    error: BaseException | None = None
    async with asyncio.TaskGroup() as group:
        try:
            yield group
        except BaseException as exc:  # re-raised unchanged below, after the children end
            error = exc
    if error is not None:
        raise error
