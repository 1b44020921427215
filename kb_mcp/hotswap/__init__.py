"""The hot-swap core: a resource built from a secret, swapped without failing a request.

    occupancy.py    per-generation user counts: "idle" means nobody holds or waits for it
    generation.py   `Generation` (resource, secret version, occupancy) and the
                    `ResourceAdapter` Protocol (build, probe, close, terminate, auth failure)
    swap.py         `HotSwap`: swap, bounded drain then close, terminate after the timeout
    refresher.py    `Refresher`: polls, parses each version once, sole owner of which
                    version is in service; single-flight auth-failure recovery
    observer.py     `HotSwapEvent`s for benchmarks and tests (no log parsing)
    group.py        the TaskGroup that owns drains inside a lifespan

A leaf: it imports only `kb_mcp.errors`, `kb_mcp.secrets` (port, schemas) and
`kb_mcp.observability`. Any async service can use it; see docs/ARCHITECTURE.md.
"""

from kb_mcp.errors import AuthFailed
from kb_mcp.hotswap.generation import Generation, ResourceAdapter, SwapEvents
from kb_mcp.hotswap.group import background_group
from kb_mcp.hotswap.observer import HotSwapEvent, Observer
from kb_mcp.hotswap.occupancy import Occupancy
from kb_mcp.hotswap.refresher import Refresher, SecretWatcher
from kb_mcp.hotswap.swap import HotSwap, Recover, SwapOwner

__all__ = [
    "AuthFailed",
    "Generation",
    "HotSwap",
    "HotSwapEvent",
    "Observer",
    "Occupancy",
    "Recover",
    "Refresher",
    "ResourceAdapter",
    "SecretWatcher",
    "SwapEvents",
    "SwapOwner",
    "background_group",
]
