"""`hot_swapped()`: the common case in one call.

    async with hot_swapped(adapter, "prod/api-key", ApiKeySecret, provider) as handle:
        answer = await handle.run(lambda client: client.get("/v1/things"))

It reads the secret, builds the first resource, watches the secret (a refresher polling
every `refresh_interval_s`, with jitter), swaps in each new version once it is built and
probed, drains and closes old resources, and on exit stops the refresher and closes
everything. A call whose credentials are refused (the adapter's `is_auth_failure`) asks
for the newest version once and is retried on it; otherwise `AuthFailed` is raised.

The adapter (`ResourceAdapter`) needs three methods, `build`, `probe` and `close`;
`terminate` (close by force; default: `close`) and `is_auth_failure` (default: never) are
used when present. The lower-level pieces (`HotSwap`, `Refresher`, `background_group`)
stay public for applications that put several resources on one refresher.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from secretswap.generation import ResourceAdapter
from secretswap.group import background_group
from secretswap.metrics import MetricsRegistry
from secretswap.observer import Observer
from secretswap.port import SecretsProvider
from secretswap.refresher import Refresher
from secretswap.schemas import SecretModel
from secretswap.swap import HotSwap

__all__ = ["Handle", "hot_swapped"]

R = TypeVar("R")
T = TypeVar("T")
V = TypeVar("V", bound=SecretModel)


class Handle(Generic[R]):
    """The resource in service, for calls: `run(op)`, or `lease()` to hold it a while."""

    def __init__(self, swap: HotSwap[Any, R], refresher: Refresher) -> None:
        self._swap = swap
        self._refresher = refresher

    async def run(self, operation: Callable[[R], Awaitable[T]]) -> T:
        """`operation(resource)`; refused credentials: the newest version, retried once."""
        return await self._swap.run(operation)

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[R]:
        """The resource in service, kept open until the block ends (no auth retry)."""
        async with self._swap.lease() as generation:
            yield generation.resource

    @property
    def resource(self) -> R:
        """The resource in service now (not held: prefer `run` or `lease`)."""
        return self._swap.current.resource

    @property
    def version_id(self) -> str:
        """The secret version in service (the refresher's word)."""
        return self._refresher.in_service(self._swap.secret_name)

    def refresh(self) -> None:
        """Re-read the secret now instead of at the next poll."""
        self._refresher.trigger()

    @property
    def swap(self) -> HotSwap[Any, R]:
        return self._swap

    @property
    def refresher(self) -> Refresher:
        return self._refresher


@asynccontextmanager
async def hot_swapped(
    adapter: ResourceAdapter[V, R],
    secret_name: str,
    model: type[V],
    provider: SecretsProvider,
    *,
    kind: str = "resource",
    refresh_interval_s: float = 300.0,
    jitter_ratio: float = 0.1,
    drain_timeout_s: float = 30.0,
    offer_pending: bool = False,
    metrics: MetricsRegistry | None = None,
    observers: tuple[Observer, ...] = (),
) -> AsyncIterator[Handle[R]]:
    """A resource built from `secret_name` (parsed as `model`), kept on its newest version.

    `kind` names the resource in logs (`{kind}_swapped`); `offer_pending`: an auth failure
    also tries the AWSPENDING version (single-user rotations); `observers` see every poll,
    detection, swap and close. Errors at start (the secret unreadable, the first build
    failing) propagate; later ones leave the resource in service and are logged.
    """
    registry = metrics or MetricsRegistry()
    async with background_group() as drains:
        refresher = Refresher(
            provider,
            interval_s=refresh_interval_s,
            jitter_ratio=jitter_ratio,
            metrics=registry,
            observers=observers,
        )
        swap: HotSwap[V, R] = HotSwap(
            adapter,
            secret_name,
            tasks=drains,
            kind=kind,
            drain_timeout_s=drain_timeout_s,
            recover=refresher.recover,
            metrics=registry,
            observers=observers,
        )
        loaded = await provider.get_secret_json(secret_name, model)
        await swap.start(loaded)
        refresher.watch(loaded, swap, offer_pending=offer_pending)
        stop = asyncio.Event()
        drains.create_task(refresher.run(stop))
        try:
            yield Handle(swap, refresher)
        finally:
            stop.set()
            await swap.aclose()
