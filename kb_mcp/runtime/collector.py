"""The cyclic garbage collector while `kb-mcp serve` boots: off, then what boot built frozen.

Importing the server's dependencies creates ~165,000 objects that live as long as the
process (modules, classes, pydantic validators of every `openai.types` and `mcp_types`
model). With the collector on, it walks them while they are being created, about 390
times (2 full collections), and finds almost nothing: one boot leaves ~2,000 cyclic
garbage objects. `collector_paused()` turns it off for its block, which the command line
opens before the first heavy import; `resume()`, called once the server is ready, moves
every object that exists to the permanent generation (`gc.freeze()`: later full
collections skip them) and turns the collector back on. The block's end turns it back on
whatever happened (a boot that failed, a stop before ready). Measured with
`python -m bench.bench_boot`: `docs/PERFORMANCE.md`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[Callable[[], None]]:
    """The collector off for the block; the yielded `resume()` freezes and turns it on."""
    was_enabled = gc.isenabled()
    gc.disable()
    resumed = False

    def resume() -> None:
        nonlocal resumed
        if resumed:
            return
        resumed = True
        gc.freeze()
        if was_enabled:
            gc.enable()

    try:
        yield resume
    finally:
        if was_enabled:
            gc.enable()
