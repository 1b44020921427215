"""secretswap: hot-swap a resource built from a secret (a pool, an HTTP client) without
failing a call, with refresh on auth failure.

    errors.py       the exception tree (`SwapError` and below)
    schemas.py      `SecretModel`, `ApiKeySecret`, `parse_secret`
    port.py         the secrets port: `SecretsProvider`, `SecretVersion`, `LoadedSecret`
    metrics.py      in-process counters (`MetricsRegistry`)
    cache.py        `SecretCache`: TTL, single flight, stale on error, forced refresh
    occupancy.py    per-generation user counts: "idle" means nobody holds or waits for it
    generation.py   `Generation` and the `ResourceAdapter` Protocol
    swap.py         `HotSwap`: swap, bounded drain then close, terminate after the timeout
    refresher.py    `Refresher`: polls, parses each version once, sole owner of which
                    version is in service; single-flight auth-failure recovery
    observer.py     `HotSwapEvent`s for benchmarks and tests (no log parsing)
    group.py        the TaskGroup that owns drains inside a lifespan
    handle.py       `hot_swapped()`: the common case in one async context manager
    testing.py      doubles: `MemoryProvider`, `ManualClock`, `FaultyAdapter`
    aws/            AWS Secrets Manager as a provider, with region failover (`aws` extra)

Importing it loads no AWS SDK, database driver, HTTP client or logging framework: it logs
through the standard library (`secretswap._logging`). Names are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secretswap.cache import SecretCache
    from secretswap.errors import (
        AuthFailed,
        ResourceClosedError,
        RotationError,
        SecretAccessDeniedError,
        SecretFormatError,
        SecretNotFoundError,
        SecretsError,
        SecretsUnavailableError,
        SwapError,
    )
    from secretswap.generation import Generation, ResourceAdapter
    from secretswap.group import background_group
    from secretswap.handle import Handle, hot_swapped
    from secretswap.metrics import Counter, MetricsRegistry
    from secretswap.observer import HotSwapEvent, Observer
    from secretswap.occupancy import Occupancy
    from secretswap.port import (
        AWSCURRENT,
        AWSPENDING,
        AWSPREVIOUS,
        CacheEntryStatus,
        LoadedSecret,
        SecretsProvider,
        SecretVersion,
    )
    from secretswap.refresher import Refresher, RejectedVersion, SecretWatcher
    from secretswap.schemas import ApiKeySecret, SecretModel, parse_secret
    from secretswap.swap import HotSwap, Recover, SwapOwner

_EXPORTS: dict[str, str] = {
    "AWSCURRENT": "port",
    "AWSPENDING": "port",
    "AWSPREVIOUS": "port",
    "ApiKeySecret": "schemas",
    "AuthFailed": "errors",
    "CacheEntryStatus": "port",
    "Counter": "metrics",
    "Generation": "generation",
    "HotSwap": "swap",
    "Handle": "handle",
    "HotSwapEvent": "observer",
    "LoadedSecret": "port",
    "MetricsRegistry": "metrics",
    "Observer": "observer",
    "Occupancy": "occupancy",
    "Recover": "swap",
    "Refresher": "refresher",
    "RejectedVersion": "refresher",
    "ResourceAdapter": "generation",
    "ResourceClosedError": "errors",
    "RotationError": "errors",
    "SecretAccessDeniedError": "errors",
    "SecretCache": "cache",
    "SecretFormatError": "errors",
    "SecretModel": "schemas",
    "SecretNotFoundError": "errors",
    "SecretVersion": "port",
    "SecretWatcher": "refresher",
    "SecretsError": "errors",
    "SecretsProvider": "port",
    "SecretsUnavailableError": "errors",
    "SwapError": "errors",
    "SwapOwner": "swap",
    "background_group": "group",
    "hot_swapped": "handle",
    "parse_secret": "schemas",
}
"""Each public name and the module defining it: imported on first use (`__getattr__`),
so `import secretswap.errors` does not load pydantic, and nothing loads what it does not use."""


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"secretswap.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0"

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "ApiKeySecret",
    "AuthFailed",
    "CacheEntryStatus",
    "Counter",
    "Generation",
    "Handle",
    "HotSwap",
    "HotSwapEvent",
    "LoadedSecret",
    "MetricsRegistry",
    "Observer",
    "Occupancy",
    "Recover",
    "Refresher",
    "RejectedVersion",
    "ResourceAdapter",
    "ResourceClosedError",
    "RotationError",
    "SecretAccessDeniedError",
    "SecretCache",
    "SecretFormatError",
    "SecretModel",
    "SecretNotFoundError",
    "SecretVersion",
    "SecretWatcher",
    "SecretsError",
    "SecretsProvider",
    "SecretsUnavailableError",
    "SwapError",
    "SwapOwner",
    "background_group",
    "hot_swapped",
    "parse_secret",
]
