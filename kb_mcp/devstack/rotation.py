"""`kb-mcp dev --rotate-every`: rotate both secrets on a schedule with the ops tooling.

Each period runs the same four-step rotations an operator runs (`kb-mcp secrets rotate`):
PostgreSQL alternates the login roles ``kb_app`` / ``kb_app_clone`` through the master
secret, and the OpenAI key is replaced by a generated one. The local embeddings endpoint
accepts the keys the secret's live versions hold, so it takes the new key as soon as the
rotation stores it, keeps accepting the previous one (AWSPREVIOUS, the overlap) for one
more period, then refuses it, as an operator revoking the old key in the OpenAI console
would. The running server notices each new version on its next
refresh (`secret.rotation_detected`, then `db.pool_swapped` / `openai.client_swapped`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from kb_mcp.config import Settings
from kb_mcp.ops.rotation.openai_key import rotate_openai
from kb_mcp.ops.rotation.postgres import rotate_postgres
from kb_mcp.ops.rotation.steps import RotationResult

__all__ = ["rotate_once", "rotate_periodically"]

log = structlog.get_logger(__name__)


async def rotate_once(settings: Settings) -> None:
    """Rotate the PostgreSQL credentials, then the OpenAI key; log each outcome."""
    jobs: tuple[tuple[str, Callable[[], Awaitable[RotationResult]]], ...] = (
        (settings.postgres_secret_name, lambda: rotate_postgres(settings)),
        (
            settings.openai_secret_name,
            lambda: rotate_openai(settings, new_key=None, generate=True),
        ),
    )
    for name, rotate in jobs:
        try:
            result = await rotate()
        except Exception as exc:  # a failed rotation is reported; the stack keeps serving
            log.error(
                "devstack.rotation_failed", secret=name, error=type(exc).__name__, detail=str(exc)
            )
            continue
        log.info(
            "devstack.rotated",
            secret=result.secret_name,
            old_version_id=result.old_version_id,
            new_version_id=result.new_version_id,
        )


async def rotate_periodically(settings: Settings, every_s: float, done: asyncio.Event) -> None:
    """Rotate every ``every_s`` seconds until ``done`` is set."""
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), every_s)
        except TimeoutError:
            await rotate_once(settings)
