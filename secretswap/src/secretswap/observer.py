"""What the hot-swap core tells an observer: polls, detected rotations, swaps.

Logs are for people; code that needs to know when a poll ran or a new credential went
into service (metrics, benchmarks, the drill, tests) passes an `Observer` to the
`Refresher` and to each `HotSwap`: an application counts swaps, drain timeouts and
recoveries under its own metric names from these events. An observer is called
synchronously, on the event loop, and must not block: it records and returns. One that
raises is contained (`notify_all`): the event still reaches the other observers, the
failure is logged once with its type and counted, and the rotation it reported goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from secretswap._logging import EventLogger
from secretswap.metrics import Counter

__all__ = ["EventKind", "HotSwapEvent", "Observer", "notify_all"]

log = EventLogger(__name__)

EventKind = Literal["poll", "detected", "recovering", "swapped", "drain_timeout", "closed"]


@dataclass(frozen=True, slots=True)
class HotSwapEvent:
    """One step of the hot-swap life cycle.

    `poll`: a refresher round started (`secret` is empty). `detected`: the refresher saw
    a new version of `secret`. `recovering`: the refresher looks for a newer version after
    `version_id` was refused (an auth failure; once per failed version and window).
    `swapped`: a resource built from `version_id` is in service (`resource` names which
    kind). `drain_timeout`: the generation built from `version_id` still had users at the
    drain timeout, or its close hung (it is terminated). `closed`: the generation built
    from `version_id` was closed after its drain.
    """

    kind: EventKind
    at: float
    """`time.monotonic()` (or the injected clock) when it happened."""
    secret: str = ""
    version_id: str = ""
    resource: str = ""


Observer = Callable[[HotSwapEvent], None]


def notify_all(
    observers: tuple[Observer, ...], event: HotSwapEvent, failures: Counter | None = None
) -> None:
    """Hand `event` to every observer, in order; one that raises is logged and counted
    (`failures`), never propagated: an observer cannot stop a rotation."""
    for observer in observers:
        try:
            observer(event)
        except Exception as exc:  # contained: logged with its type (never its message)
            if failures is not None:
                failures.value += 1
            log.error(
                "hotswap.observer_failed",
                kind=event.kind,
                secret=event.secret,
                version_id=event.version_id,
                error=type(exc).__name__,
            )
