"""`OpenAIClientHolder`: the current `AsyncOpenAI` client, swapped on key rotation.

Each key gets an independent client (never `with_options`/`copy`: those share one HTTP
pool, and closing one kills the other's requests). A rotation builds the new client,
optionally probes it (`GET /models`), swaps it in, and closes the old one once its
in-flight requests are done (bounded by the drain timeout). A 401 forces a single-flight
refresh of the key secret; with a new version the request is retried once, otherwise a
clear `EmbeddingAuthError` is raised.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import openai
import structlog

from kb_mcp.embeddings import lean
from kb_mcp.errors import (
    EmbeddingAuthError,
    EmbeddingError,
    ResourceClosedError,
    RotationError,
    SecretsError,
)
from kb_mcp.observability.counters import MetricsRegistry
from kb_mcp.runtime.occupancy import Occupancy
from kb_mcp.secrets.port import SecretsProvider, SecretVersion
from kb_mcp.secrets.schemas import OpenAIKeySecret, parse_secret

__all__ = ["OpenAIClientHolder"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(eq=False)
class _Slot:
    client: openai.AsyncOpenAI
    version_id: str
    occupancy: Occupancy = field(default_factory=Occupancy)

    @property
    def users(self) -> int:
        return self.occupancy.users

    def enter(self) -> None:
        self.occupancy.enter()

    def leave(self) -> None:
        self.occupancy.leave()


def _tls_context() -> ssl.SSLContext:
    """The default verifying context, with certifi's bundle when installed (as httpx does)."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi ships with the HTTP stack
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class OpenAIClientHolder:
    """Owns the OpenAI client for one API-key secret; implements `EmbeddingsBackend`."""

    def __init__(
        self,
        provider: SecretsProvider,
        secret_name: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        probe_on_rotation: bool = True,
        drain_timeout_s: float = 30.0,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self._provider = provider
        self.secret_name = secret_name
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._probe_on_rotation = probe_on_rotation
        self._drain_timeout_s = drain_timeout_s
        self._metrics = metrics or MetricsRegistry()
        self._current: _Slot | None = None
        self._rotate_lock = asyncio.Lock()
        self._auth_lock = asyncio.Lock()
        self._failed_recovery: tuple[str, float] | None = None
        self._drains: set[asyncio.Task[None]] = set()
        self._closed = False
        self._ssl_context: ssl.SSLContext | None = None
        self._swaps = self._metrics.counter("OpenAIClientSwaps")
        self._auth_recoveries = self._metrics.counter("OpenAIAuthRecoveries")

    async def start(self) -> None:
        """Build the first client from the current key (no network call)."""
        loaded = await self._provider.get_secret_json(self.secret_name, OpenAIKeySecret)
        self._current = self._build(loaded.value, loaded.version_id)
        log.info("openai.client_ready", secret=self.secret_name, version_id=loaded.version_id)

    async def aclose(self) -> None:
        """Close the current client after its requests finish (bounded), and draining ones."""
        if self._closed:
            return
        self._closed = True
        async with self._rotate_lock:
            slot, self._current = self._current, None
            if slot is not None:
                await self._drain_and_close(slot, reason="shutdown")
        if self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)

    @property
    def version_id(self) -> str | None:
        return None if self._current is None else self._current.version_id

    @property
    def draining(self) -> int:
        return len(self._drains)

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        """Embeddings for `texts` in order (the `EmbeddingsBackend` port)."""

        async def call(client: openai.AsyncOpenAI) -> list[list[float]]:
            return await lean.create_embeddings(client, texts, model=model, dimensions=dimensions)

        return await self.call(call)

    async def call(self, operation: Callable[[openai.AsyncOpenAI], Awaitable[T]]) -> T:
        """Run `operation` with the current client; on 401 refresh the key and retry once."""
        for attempt in (1, 2):
            slot = self._require_slot()
            slot.enter()
            try:
                return await operation(slot.client)
            except openai.AuthenticationError as exc:
                if attempt == 2:
                    raise self._auth_error(slot) from exc
                await self._recover_auth(slot)
            except openai.APIStatusError as exc:
                raise EmbeddingError(
                    f"embeddings endpoint answered http {exc.status_code}",
                    hint="check OPENAI_BASE_URL, the model name and the account's limits",
                ) from exc
            except openai.APIError as exc:
                raise EmbeddingError(
                    f"embeddings endpoint unreachable ({type(exc).__name__})",
                    hint="check OPENAI_BASE_URL and the network route to it",
                ) from exc
            finally:
                slot.leave()
        raise AssertionError("unreachable")  # pragma: no cover

    async def apply(self, version: SecretVersion) -> bool:
        """Put a new key version into service (refresher entry point); False if already."""
        try:
            key = parse_secret(
                OpenAIKeySecret, version.value.get_secret_value(), secret_name=version.name
            )
        except SecretsError as exc:
            raise RotationError(
                str(exc), secret_name=version.name, version_id=version.version_id, hint=exc.hint
            ) from exc
        return await self.rotate(key, version.version_id)

    async def rotate(self, key: OpenAIKeySecret, version_id: str) -> bool:
        """Build, probe, swap, then close the old client after its in-flight requests."""
        async with self._rotate_lock:
            old = self._require_slot()
            if old.version_id == version_id:
                return False
            new = self._build(key, version_id)
            if self._probe_on_rotation:
                try:
                    await new.client.models.list()
                except openai.APIError as exc:
                    await new.client.close()
                    status = getattr(exc, "status_code", None)
                    raise RotationError(
                        f"new key of secret {self.secret_name} version {version_id} failed the "
                        f"probe ({type(exc).__name__}{f' http {status}' if status else ''})",
                        secret_name=self.secret_name,
                        version_id=version_id,
                        hint="check the new key is active in the OpenAI console",
                    ) from exc
            self._current = new
            self._swaps.value += 1
            log.info(
                "openai.client_swapped",
                secret=self.secret_name,
                old_version_id=old.version_id,
                new_version_id=version_id,
                old_client_users=old.users,
            )
            task = asyncio.create_task(self._drain_and_close(old, reason="rotation"))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
            return True

    def _require_slot(self) -> _Slot:
        slot = self._current
        if slot is None:
            raise ResourceClosedError("openai client is not open")
        return slot

    def _build(self, key: OpenAIKeySecret, version_id: str) -> _Slot:
        # Each client gets its own HTTP pool, but they share one TLS context: loading the
        # CA bundle for every new client takes ~90 ms of event-loop time at each swap.
        if self._ssl_context is None:
            self._ssl_context = _tls_context()
        client = openai.AsyncOpenAI(
            api_key=key.api_key.get_secret_value(),
            base_url=self._base_url,
            timeout=self._timeout_s,
            max_retries=self._max_retries,
            http_client=openai.DefaultAsyncHttpxClient(verify=self._ssl_context),
        )
        slot = _Slot(client=client, version_id=version_id)
        return slot

    async def _drain_and_close(self, slot: _Slot, *, reason: str) -> None:
        started = time.monotonic()
        if not await slot.occupancy.wait_idle(self._drain_timeout_s):
            log.warning(
                "openai.client_drain_timeout",
                secret=self.secret_name,
                version_id=slot.version_id,
                users=slot.users,
                reason=reason,
            )
        await slot.client.close()
        log.info(
            "openai.client_closed",
            secret=self.secret_name,
            version_id=slot.version_id,
            reason=reason,
            drained_in_s=round(time.monotonic() - started, 3),
        )

    def _auth_error(self, slot: _Slot) -> EmbeddingAuthError:
        return EmbeddingAuthError(
            f"embeddings endpoint refused the api key of secret {self.secret_name} version "
            f"{slot.version_id} and the secret has no newer version",
            hint=f"rotate secret {self.secret_name} to an active key; see secrets/RUNBOOK.md",
        )

    async def _recover_auth(self, slot: _Slot) -> None:
        """Single-flight refresh after a 401: a new version is swapped in, else raise."""
        async with self._auth_lock:
            if self._current is not slot:
                return
            failed = self._failed_recovery
            if (
                failed is not None
                and failed[0] == slot.version_id
                and time.monotonic() - failed[1] < 1.0
            ):
                raise self._auth_error(slot)
            self._auth_recoveries.value += 1
            log.warning("openai.auth_failed", secret=self.secret_name, version_id=slot.version_id)
            try:
                version = await self._provider.refresh(
                    self.secret_name, seen_version=slot.version_id
                )
            except SecretsError as exc:
                self._failed_recovery = (slot.version_id, time.monotonic())
                raise self._auth_error(slot) from exc
            if version.version_id == slot.version_id:
                self._failed_recovery = (slot.version_id, time.monotonic())
                raise self._auth_error(slot)
            try:
                await self.apply(version)
            except RotationError as exc:
                self._failed_recovery = (slot.version_id, time.monotonic())
                raise self._auth_error(slot) from exc
            log.info(
                "openai.auth_recovered",
                secret=self.secret_name,
                old_version_id=slot.version_id,
                new_version_id=version.version_id,
            )
