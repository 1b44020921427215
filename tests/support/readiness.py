"""`ReadinessSnapshot`: a fixed readiness verdict for HTTP app tests (a `ReadinessReport`
the test sets by hand, where the runtime's is `Runtime.health`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secretswap.port import CacheEntryStatus

__all__ = ["ReadinessSnapshot", "ready"]


@dataclass(frozen=True, slots=True)
class ReadinessSnapshot:
    """A readiness verdict with the fields `/readyz` reports."""

    ready: bool
    degraded: bool = False
    secrets: tuple[CacheEntryStatus, ...] = ()
    database_ok: bool = True
    detail: str = ""

    @property
    def status(self) -> str:
        if not self.ready:
            return "not_ready"
        return "degraded" if self.degraded else "ready"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "secrets": [
                {
                    "name": s.name,
                    "version_id": s.version_id,
                    "age_s": round(s.age_s, 3),
                    "stale": s.stale,
                }
                for s in self.secrets
            ],
            "database": "ok" if self.database_ok else (self.detail or "unavailable"),
        }


async def ready() -> ReadinessSnapshot:
    """Always ready (the `readiness` of an app under test that has no runtime)."""
    return ReadinessSnapshot(ready=True)
