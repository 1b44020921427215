"""A real local HTTP reverse proxy that injects AWS-shaped faults in front of moto.

`FaultProxy` listens on 127.0.0.1 (port 0, read back) in a background thread with its own
event loop, so it keeps serving whatever the test's loop is doing. It forwards every
request to the upstream (the moto server) unchanged, except that it can answer the next
N requests, or all of them until `clear()`, with a given HTTP status and an AWS JSON error
body such as ``{"__type": "ThrottlingException", "message": "Rate exceeded"}``. It counts
requests per Secrets Manager operation (the ``X-Amz-Target`` header), so tests and
benchmarks can assert how many calls actually went over the wire.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

__all__ = [
    "ACCESS_DENIED",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
    "THROTTLING",
    "Fault",
    "FaultProxy",
]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Fault:
    """An HTTP answer in the shape AWS's JSON protocol uses for errors."""

    status: int
    error_type: str
    message: str

    def body(self) -> bytes:
        return json.dumps({"__type": self.error_type, "message": self.message}).encode()


THROTTLING = Fault(400, "ThrottlingException", "Rate exceeded")
INTERNAL_ERROR = Fault(500, "InternalServiceError", "An internal error occurred")
SERVICE_UNAVAILABLE = Fault(503, "ServiceUnavailable", "Service is unavailable")
ACCESS_DENIED = Fault(
    400,
    "AccessDeniedException",
    "User is not authorized to perform: secretsmanager:GetSecretValue",
)


class FaultProxy:
    """Forwards to `upstream`, answering with injected faults while any are armed."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._fail_next: list[Fault] = []
        self._fail_all: Fault | None = None
        self._received: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"FaultProxy(port={self._port}, upstream={self._upstream!r})"

    # -- control (any thread) -------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """The URL to give AWS clients instead of the upstream's."""
        if not self._port:
            raise RuntimeError("fault proxy is not running")
        return f"http://127.0.0.1:{self._port}"

    def fail_next(self, count: int, fault: Fault) -> None:
        """Answer the next `count` requests with `fault`, then forward again."""
        with self._lock:
            self._fail_next.extend([fault] * count)

    def fail_all(self, fault: Fault) -> None:
        """Answer every request with `fault` until `clear()`."""
        with self._lock:
            self._fail_all = fault

    def clear(self) -> None:
        """Disarm every fault: forward everything."""
        with self._lock:
            self._fail_next.clear()
            self._fail_all = None

    def received(self, operation: str | None = None) -> int:
        """Requests received (for one operation such as "GetSecretValue", or all)."""
        with self._lock:
            return self._received[operation] if operation else self._received.total()

    def failed(self, operation: str | None = None) -> int:
        """Requests answered with an injected fault (for one operation, or all)."""
        with self._lock:
            return self._failed[operation] if operation else self._failed.total()

    def forwarded(self, operation: str | None = None) -> int:
        """Requests that reached the upstream (for one operation, or all)."""
        return self.received(operation) - self.failed(operation)

    def reset_counts(self) -> None:
        with self._lock:
            self._received.clear()
            self._failed.clear()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("fault proxy is already running")
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("fault proxy did not start")
        if self._start_error is not None:
            raise RuntimeError("fault proxy failed to start") from self._start_error

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT_S)
        self._thread = self._loop = None
        self._port = 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the proxy thread ---------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start() in the test's thread
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(limit=0),
            trust_env=False,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        sockets = list(runner.addresses)
        self._port = int(sockets[0][1])
        self._runner = runner

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            self._received[operation] += 1
            fault = self._fail_next.pop(0) if self._fail_next else self._fail_all
            if fault is not None:
                self._failed[operation] += 1
            return fault

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.rsplit(".", 1)[-1] if target else request.method
        body = await request.read()
        fault = self._take_fault(operation)
        if fault is not None:
            return web.Response(
                status=fault.status,
                body=fault.body(),
                headers={
                    "Content-Type": "application/x-amz-json-1.1",
                    "x-amzn-RequestId": str(uuid.uuid4()),
                },
            )
        assert self._session is not None
        headers: dict[str, Any] = {
            k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        }
        async with self._session.request(
            request.method,
            self._upstream + request.path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            return web.Response(status=upstream.status, body=payload, headers=out_headers)
