"""The product's local OpenAI endpoint, wrapped with test-only knobs.

``FakeOpenAIServer`` serves ``kb_mcp.devstack.local_openai.build_app`` behind an ASGI
wrapper that counts requests (and the 401s among them), injects failures on authorised
requests (``fail_next``), adds latency (``latency_s``) and holds embeddings requests
unanswered until released (``hold_embeddings``: a hung endpoint). Keys are allowed and revoked
through the product's ``AcceptedKeys``. None of this ships in the package.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb_mcp.devstack.local_openai import (
    DEFAULT_MODELS,
    AcceptedKeys,
    LocalOpenAIServer,
    bearer_key,
    build_app,
)

__all__ = ["FakeOpenAIServer"]


class _Knobs:
    """Counters and pending faults, shared by the serving thread and the test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency_s = 0.0
        self.failures_left = 0
        self.failure_status = 500
        self.failure_retry_after_s: float | None = None
        self.requests_total = 0
        self.unauthorized_total = 0
        self.injected_failures_total = 0
        self.released = threading.Event()
        self.released.set()
        self.arrived = threading.Event()

    def take_failure(self) -> tuple[int, float | None] | None:
        with self.lock:
            if self.failures_left == 0:
                return None
            self.failures_left -= 1
            self.injected_failures_total += 1
            return self.failure_status, self.failure_retry_after_s


def _faulty(app: ASGIApp, keys: AcceptedKeys, knobs: _Knobs) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/v1/"):
            await app(scope, receive, send)
            return
        key = bearer_key(Request(scope))
        failure = knobs.take_failure() if key is not None and keys.allowed(key) else None
        if failure is not None:
            status, retry_after_s = failure
            with knobs.lock:
                knobs.requests_total += 1
            headers = (
                None
                if retry_after_s is None
                else {"retry-after-ms": str(int(retry_after_s * 1000))}
            )
            body = {
                "error": {
                    "message": "injected failure from the test server",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
            return
        with knobs.lock:
            latency_s = knobs.latency_s
        if latency_s > 0 and scope["path"] == "/v1/embeddings":
            await asyncio.sleep(latency_s)
        if not knobs.released.is_set() and scope["path"] == "/v1/embeddings":
            knobs.arrived.set()
            await asyncio.to_thread(knobs.released.wait)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                with knobs.lock:
                    knobs.requests_total += 1
                    if message["status"] == 401:
                        knobs.unauthorized_total += 1
            await send(message)

        await app(scope, receive, counting_send)

    return wrapped


class FakeOpenAIServer(LocalOpenAIServer):
    """The local endpoint on 127.0.0.1 with fault injection and counters for tests."""

    def __init__(
        self,
        keys: Iterable[str] = (),
        *,
        models: Mapping[str, tuple[int, bool]] = DEFAULT_MODELS,
    ) -> None:
        accepted = AcceptedKeys(keys)
        self._knobs = _Knobs()
        self.models = dict(models)
        super().__init__(
            accepted, app=_faulty(build_app(accepted, models=self.models), accepted, self._knobs)
        )

    def allow_key(self, key: str) -> None:
        """Accept ``key`` from now on (other allowed keys stay allowed)."""
        self.keys.allow(key)

    def revoke_key(self, key: str) -> None:
        """Refuse ``key`` from now on with 401; unknown keys are ignored."""
        self.keys.revoke(key)

    def set_keys(self, keys: Iterable[str]) -> None:
        """Replace the whole allowed set."""
        self.keys.replace(keys)

    def is_allowed(self, key: str) -> bool:
        return self.keys.allowed(key)

    @property
    def latency_s(self) -> float:
        """Artificial delay added to every embeddings request, in seconds."""
        with self._knobs.lock:
            return self._knobs.latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency_s must not be negative")
        with self._knobs.lock:
            self._knobs.latency_s = value

    def hold_embeddings(self) -> None:
        """Leave every embeddings request unanswered until `release_embeddings` (or stop)."""
        self._knobs.arrived.clear()
        self._knobs.released.clear()

    def release_embeddings(self) -> None:
        """Answer the held embeddings requests, and the next ones at once."""
        self._knobs.released.set()

    async def embeddings_held(self, timeout_s: float = 60.0) -> None:
        """Return once an embeddings request is being held (raises past `timeout_s`)."""
        if not await asyncio.to_thread(self._knobs.arrived.wait, timeout_s):
            raise TimeoutError("no embeddings request arrived to be held")

    def stop(self) -> None:
        self.release_embeddings()  # a held request must not keep the server from stopping
        super().stop()

    def fail_next(self, n: int, status: int = 500, *, retry_after_s: float | None = None) -> None:
        """Make the next ``n`` authorised API requests fail with ``status``.

        ``retry_after_s`` adds a ``retry-after-ms`` header, which the SDK honours,
        so retry tests need not wait for its default backoff.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        with self._knobs.lock:
            self._knobs.failures_left = n
            self._knobs.failure_status = status
            self._knobs.failure_retry_after_s = retry_after_s

    @property
    def requests_total(self) -> int:
        """Requests received on any API route, authorised or not."""
        with self._knobs.lock:
            return self._knobs.requests_total

    @property
    def unauthorized_total(self) -> int:
        """Requests refused with 401."""
        with self._knobs.lock:
            return self._knobs.unauthorized_total

    @property
    def injected_failures_total(self) -> int:
        """Requests failed on purpose by ``fail_next``."""
        with self._knobs.lock:
            return self._knobs.injected_failures_total
