"""A generation of a hot-swapped resource, and the adapter that knows how to make one.

A `Generation` is one resource built from one secret version, with the occupancy that
says who is using it. The `ResourceAdapter` is everything the core needs to know about
a kind of resource: how to build it from a parsed secret, how to probe it before it
goes into service, how to close it (gracefully, then by force), and which exceptions
mean "these credentials were refused".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from secretswap.occupancy import Occupancy

__all__ = ["Generation", "ResourceAdapter", "SwapEvents"]

from secretswap.schemas import SecretModel

R = TypeVar("R")
V_contra = TypeVar("V_contra", bound=SecretModel, contravariant=True)


@dataclass(eq=False)
class Generation(Generic[R]):
    """One resource, the secret version behind it, and its users."""

    resource: R
    version_id: str
    number: int
    occupancy: Occupancy = field(default_factory=Occupancy)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def users(self) -> int:
        return self.occupancy.users


@dataclass(frozen=True, slots=True)
class SwapEvents:
    """The log event names of one kind of resource (`db.pool` -> `db.pool_swapped`...)."""

    prefix: str

    @property
    def ready(self) -> str:
        return self.prefix + "_ready"

    @property
    def swapped(self) -> str:
        return self.prefix + "_swapped"

    @property
    def closed(self) -> str:
        return self.prefix + "_closed"

    @property
    def drain_timeout(self) -> str:
        return self.prefix + "_drain_timeout"

    @property
    def close_failed(self) -> str:
        return self.prefix + "_close_failed"


class ResourceAdapter(Protocol[V_contra, R]):
    """How to build, probe, close and recognise refusals of one kind of resource.

    `V` is the parsed secret model (`PostgresCredentials`), `R` the resource. `build` and
    `probe` raise a `SwapError` that says what went wrong (the core turns it into a
    `RotationError` on rotation, and lets it through at boot).
    """

    @property
    def events(self) -> SwapEvents:
        """The log event names for this kind (`SwapEvents("db.pool")`)."""
        ...

    async def build(self, value: V_contra, version_id: str) -> R:
        """A new resource from `value`; nothing half-built is left open on failure."""
        ...

    async def probe(self, resource: R, version_id: str) -> None:
        """Prove a freshly built resource works before it is swapped in (rotation only)."""
        ...

    async def close(self, resource: R) -> None:
        """Close gracefully; called once nobody uses it (bounded by the drain timeout)."""
        ...

    async def terminate(self, resource: R) -> None:
        """Close by force: users past the drain timeout, or a close that hangs."""
        ...

    def is_auth_failure(self, exc: BaseException) -> bool:
        """True when `exc` means the service refused these credentials (28P01, 401)."""
        ...

    def describe(self, resource: R) -> dict[str, object]:
        """Extra log fields naming the resource (never a secret value)."""
        ...
