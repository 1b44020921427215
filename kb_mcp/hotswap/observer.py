"""What the hot-swap core tells an observer: polls, detected rotations, swaps.

Logs are for people; code that needs to know when a poll ran or a new credential went
into service (benchmarks, the drill, tests) passes an `Observer` to the `Refresher` and
to each `HotSwap`. An observer is called synchronously, on the event loop, and must not
block or raise: it records and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["HotSwapEvent", "Observer", "notify_all"]

EventKind = Literal["poll", "detected", "swapped", "closed"]


@dataclass(frozen=True, slots=True)
class HotSwapEvent:
    """One step of the hot-swap life cycle.

    `poll`: a refresher round started (`secret` is empty). `detected`: the refresher saw
    a new version of `secret`. `swapped`: a resource built from `version_id` is in
    service (`resource` names which kind). `closed`: the generation built from
    `version_id` was closed after its drain.
    """

    kind: EventKind
    at: float
    """`time.monotonic()` (or the injected clock) when it happened."""
    secret: str = ""
    version_id: str = ""
    resource: str = ""


Observer = Callable[[HotSwapEvent], None]


def notify_all(observers: tuple[Observer, ...], event: HotSwapEvent) -> None:
    """Hand `event` to every observer, in order."""
    for observer in observers:
        observer(event)
