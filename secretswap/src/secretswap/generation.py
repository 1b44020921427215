"""A generation of a hot-swapped resource, and the adapter that knows how to make one.

A `Generation` is one resource built from one secret version, with the occupancy that
says who is using it. The `ResourceAdapter` is everything the core needs to know about
a kind of resource: how to build it from a parsed secret, how to probe it before it
goes into service and how to close it (optionally: by force, and which exceptions mean
"these credentials were refused").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from secretswap.occupancy import Occupancy

__all__ = ["Generation", "ResourceAdapter"]

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


class ResourceAdapter(Protocol[V_contra, R]):
    """How to make one kind of resource from a parsed secret (`V`), prove it, and close it.

    `V` is the parsed secret model (`ApiKeySecret`), `R` the resource. `build` and `probe`
    raise what went wrong (the core turns it into a `RotationError` on rotation, and lets
    it through at start). Three optional methods are used when the adapter has them:

    - `terminate(resource)`: close by force (users past the drain timeout, a close that
      hangs); default `close`;
    - `is_auth_failure(exc) -> bool`: True when `exc` means the service refused these
      credentials (SQLSTATE 28P01, HTTP 401); default never;
    - `describe(resource) -> dict`: extra log fields naming the resource (never a secret
      value); default none.

    Nothing here names log events or metrics: the `HotSwap`'s `kind` names the resource in
    logs, and observers (`HotSwapEvent`) count what they want.
    """

    async def build(self, value: V_contra, version_id: str) -> R:
        """A new resource from `value`; nothing half-built is left open on failure."""
        ...

    async def probe(self, resource: R, version_id: str) -> None:
        """Raise if a freshly built resource does not work (it is then not swapped in)."""
        ...

    async def close(self, resource: R) -> None:
        """Close gracefully; called once nobody uses it (bounded by the drain timeout)."""
        ...
