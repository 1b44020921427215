"""`AuthTokenHolder`: the bearer tokens `/mcp` accepts, hot-reloaded like every secret.

The token secret's AWSCURRENT value is always accepted. Its AWSPREVIOUS value is accepted
during the rotation overlap (`overlap_s`, 24 hours by default, counted from the current
version's creation), so clients can move to the new token without a failed request.
After a second rotation the oldest token is gone: the holder keeps exactly two.

A plain watcher of the refresher: a token is a value, not a resource, so there is nothing
to drain; the refresher parses each version once and hands it over through `apply`. The
refresher alone records which version is in service (readiness reads it there); it hands
over only versions other than that one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog
from pydantic import SecretStr
from secretswap.port import AWSPREVIOUS, LoadedSecret, SecretsProvider
from secretswap.schemas import parse_secret

from kb_mcp.errors import SecretNotFoundError, SecretsError
from kb_mcp.secrets.schemas import AuthTokenSecret

__all__ = ["AuthTokenHolder"]

log = structlog.get_logger(__name__)


class AuthTokenHolder:
    """Current and (within the overlap) previous bearer token of one secret."""

    def __init__(
        self, provider: SecretsProvider, secret_name: str, *, overlap_s: float = 86_400.0
    ) -> None:
        self._provider = provider
        self.secret_name = secret_name
        self._overlap_s = overlap_s
        self._current: SecretStr | None = None
        self._previous: SecretStr | None = None
        self._previous_until = 0.0

    async def start(self, loaded: LoadedSecret[AuthTokenSecret]) -> None:
        """Serve `loaded` (read at boot), and AWSPREVIOUS if there is one (a restart inside
        an overlap)."""
        self._current = loaded.value.token
        try:
            previous = await self._provider.get_secret_stage(self.secret_name, AWSPREVIOUS)
        except SecretNotFoundError:
            return
        except SecretsError as exc:
            log.warning("auth.previous_token_unavailable", secret=self.secret_name, error=str(exc))
            return
        if previous.version_id == loaded.version_id:
            return
        try:
            token = parse_secret(
                AuthTokenSecret, previous.value.get_secret_value(), secret_name=self.secret_name
            )
        except SecretsError:
            return
        created = loaded.version.created_at
        remaining = self._overlap_s
        if created is not None:
            age = (datetime.now(UTC) - created.astimezone(UTC)).total_seconds()
            remaining = self._overlap_s - max(0.0, age)
        if remaining > 0:
            self._previous = token.token
            self._previous_until = time.monotonic() + remaining

    def tokens(self) -> tuple[SecretStr, ...]:
        """The tokens accepted now: current first, then previous within the overlap."""
        if self._current is None:
            return ()
        if self._previous is not None and time.monotonic() < self._previous_until:
            return (self._current, self._previous)
        return (self._current,)

    async def apply(self, loaded: LoadedSecret[AuthTokenSecret]) -> bool:
        """A new token version: it becomes current, the old current becomes previous."""
        self._previous = self._current
        self._previous_until = time.monotonic() + self._overlap_s
        self._current = loaded.value.token
        log.info("auth.token_rotated", secret=self.secret_name, version_id=loaded.version_id)
        return True
