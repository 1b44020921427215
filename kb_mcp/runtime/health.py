"""Readiness of a runtime: which secrets are loaded (versions and ages, never values),
whether the database answers, and whether the staleness budget is exceeded.

`ready` is false while booting, while stopping, and when the pool does not answer.
`degraded` is true when a secret has been served stale (refreshes failing) for longer
than `max_staleness_s`: the service keeps working with the last good credentials, and
readiness says so without taking the task out of the load balancer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kb_mcp.secrets.port import CacheEntryStatus

__all__ = ["RuntimeHealth", "SecretHealth"]


@dataclass(frozen=True, slots=True)
class SecretHealth:
    """One secret as readiness reports it."""

    name: str
    version_id: str
    in_service_version_id: str | None
    age_s: float
    stale: bool
    stale_for_s: float
    last_error: str | None
    region: str | None = None

    @classmethod
    def from_status(cls, status: CacheEntryStatus, in_service: str | None) -> SecretHealth:
        return cls(
            name=status.name,
            version_id=status.version_id,
            in_service_version_id=in_service,
            age_s=round(status.age_s, 3),
            stale=status.stale,
            stale_for_s=round(status.stale_for_s, 3),
            last_error=status.last_error,
            region=status.region,
        )


@dataclass(frozen=True, slots=True)
class RuntimeHealth:
    """What `/readyz` reports."""

    ready: bool
    degraded: bool
    stopping: bool
    database_ok: bool
    database_detail: str
    secrets_source: str
    secrets: tuple[SecretHealth, ...]

    @property
    def status(self) -> str:
        if not self.ready:
            return "not_ready"
        return "degraded" if self.degraded else "ready"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: versions, ages and states only, never a value."""
        return {
            "status": self.status,
            "ready": self.ready,
            "degraded": self.degraded,
            "stopping": self.stopping,
            "database": "ok" if self.database_ok else self.database_detail,
            "secrets_source": self.secrets_source,
            "secrets": [
                {
                    "name": s.name,
                    "version_id": s.version_id,
                    "in_service_version_id": s.in_service_version_id,
                    "age_s": s.age_s,
                    "stale": s.stale,
                    "stale_for_s": s.stale_for_s,
                    "last_error": s.last_error,
                    "region": s.region,
                }
                for s in self.secrets
            ],
        }


async def probe_quietly(probe: Any, timeout_s: float) -> tuple[bool, str]:
    """Run an async probe; (True, "ok") or (False, the error class name)."""
    try:
        await asyncio.wait_for(probe(), timeout_s)
    except Exception as exc:  # readiness reports any failure as a state, never raises
        return False, type(exc).__name__
    return True, "ok"
