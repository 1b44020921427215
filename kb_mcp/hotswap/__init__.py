"""The hot-swap core, as kb-mcp uses it: the `secretswap` library, re-exported.

The core (generation, swap, refresher, observer, the drains' task group) is a
distribution of its own in this repository (`secretswap/`, see its README); kb-mcp's
adapters over it live in `kb_mcp.db.pool` and `kb_mcp.embeddings.holder`. `load.py` (the
load-under-rotation harness of the zero-drop test, the rotation benchmark and the drill)
stays here: it is kb-mcp's.
"""

from secretswap import (
    AuthFailed,
    Generation,
    HotSwap,
    HotSwapEvent,
    Observer,
    Occupancy,
    Recover,
    Refresher,
    RejectedVersion,
    ResourceAdapter,
    SecretWatcher,
    SwapEvents,
    SwapOwner,
    background_group,
)

__all__ = [
    "AuthFailed",
    "Generation",
    "HotSwap",
    "HotSwapEvent",
    "Observer",
    "Occupancy",
    "Recover",
    "Refresher",
    "RejectedVersion",
    "ResourceAdapter",
    "SecretWatcher",
    "SwapEvents",
    "SwapOwner",
    "background_group",
]
