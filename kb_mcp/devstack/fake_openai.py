"""A local OpenAI-compatible embeddings server: real HTTP, real auth, hashed vectors.

It speaks enough of the OpenAI API for the official ``openai`` SDK:
``POST /v1/embeddings`` (float or base64 encoding), ``GET /v1/models`` and
``GET /v1/models/{id}``, with OpenAI-shaped error bodies, and an unauthenticated
``GET /healthz`` for container health checks. Bearer keys are
checked against an allowed set that tests (and ``kb-mcp dev``) change at run
time to act out a key rotation; nothing else about a key is kept.

``FakeOpenAIServer`` (a ``FakeOpenAIState`` that serves itself) runs the app
with uvicorn on its own event loop in a background thread, on 127.0.0.1 and a
port the OS picked.
``build_app(state)`` returns the bare Starlette app for serving it elsewhere
(``python -m kb_mcp.devstack.embeddings_server`` serves it as a process).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import socket
import struct
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kb_mcp.devstack.hashing import hashed_embedding, token_count

__all__ = ["DEFAULT_MODELS", "FakeOpenAIServer", "FakeOpenAIState", "build_app"]

logger = structlog.get_logger(__name__)

# Model id -> (default dimensions, whether `dimensions` may be requested).
DEFAULT_MODELS: Mapping[str, tuple[int, bool]] = {
    "text-embedding-3-small": (1536, True),
    "text-embedding-3-large": (3072, True),
    "text-embedding-ada-002": (1536, False),
}
_MODEL_CREATED = 1_705_953_180
_MAX_INPUTS = 2048
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


class FakeOpenAIState:
    """Thread-safe controls and counters shared by the app and the test thread."""

    def __init__(
        self,
        keys: Iterable[str] = (),
        *,
        models: Mapping[str, tuple[int, bool]] = DEFAULT_MODELS,
    ) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set(keys)
        self.models: Mapping[str, tuple[int, bool]] = dict(models)
        self._latency_s = 0.0
        self._failures_left = 0
        self._failure_status = 500
        self._failure_retry_after_s: float | None = None
        self._requests_total = 0
        self._unauthorized_total = 0
        self._injected_failures_total = 0
        self.admin_token: str | None = None
        """Bearer token of `POST /_admin/keys` (allow/revoke keys); None disables it."""

    def __repr__(self) -> str:
        return f"FakeOpenAIState(allowed_keys={len(self._keys)}, models={sorted(self.models)})"

    def allow_key(self, key: str) -> None:
        """Accept ``key`` from now on (other allowed keys stay allowed)."""
        with self._lock:
            self._keys.add(key)

    def revoke_key(self, key: str) -> None:
        """Refuse ``key`` from now on with 401; unknown keys are ignored."""
        with self._lock:
            self._keys.discard(key)

    def set_keys(self, keys: Iterable[str]) -> None:
        """Replace the whole allowed set."""
        with self._lock:
            self._keys = set(keys)

    def is_allowed(self, key: str) -> bool:
        with self._lock:
            return key in self._keys

    @property
    def latency_s(self) -> float:
        """Artificial delay added to every embeddings request, in seconds."""
        with self._lock:
            return self._latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency_s must not be negative")
        with self._lock:
            self._latency_s = value

    def fail_next(self, n: int, status: int = 500, *, retry_after_s: float | None = None) -> None:
        """Make the next ``n`` authorised requests fail with ``status``.

        ``retry_after_s`` adds a ``retry-after-ms`` header, which the SDK honours,
        so retry tests need not wait for its default backoff.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        with self._lock:
            self._failures_left = n
            self._failure_status = status
            self._failure_retry_after_s = retry_after_s

    def take_failure(self) -> tuple[int, float | None] | None:
        """Consume one injected failure, if any is pending."""
        with self._lock:
            if self._failures_left == 0:
                return None
            self._failures_left -= 1
            self._injected_failures_total += 1
            return self._failure_status, self._failure_retry_after_s

    def count_request(self, *, authorized: bool) -> None:
        with self._lock:
            self._requests_total += 1
            if not authorized:
                self._unauthorized_total += 1

    @property
    def requests_total(self) -> int:
        """Requests received on any API route, authorised or not."""
        with self._lock:
            return self._requests_total

    @property
    def unauthorized_total(self) -> int:
        """Requests refused with 401."""
        with self._lock:
            return self._unauthorized_total

    @property
    def injected_failures_total(self) -> int:
        """Requests failed on purpose by ``fail_next``."""
        with self._lock:
            return self._injected_failures_total


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _unauthorized() -> JSONResponse:
    # The key is never echoed back, unlike the real API's masked excerpt.
    return _error(401, "Incorrect API key provided", code="invalid_api_key")


def _bearer_key(request: Request) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def _gate(state: FakeOpenAIState, request: Request) -> JSONResponse | None:
    """Check auth and injected failures; return the response to send instead, if any."""
    key = _bearer_key(request)
    authorized = key is not None and state.is_allowed(key)
    state.count_request(authorized=authorized)
    if not authorized:
        return _unauthorized()
    failure = state.take_failure()
    if failure is None:
        return None
    status, retry_after_s = failure
    headers = None if retry_after_s is None else {"retry-after-ms": str(int(retry_after_s * 1000))}
    return _error(
        status, "injected failure from the local server", type_="server_error", headers=headers
    )


def _model_body(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}


def _parse_inputs(raw: object) -> list[str] | JSONResponse:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        return _error(400, "input must be a non-empty string or list of strings", param="input")
    if any(isinstance(item, int | list) for item in raw):
        return _error(400, "token inputs are not supported by this server", param="input")
    if not all(isinstance(item, str) for item in raw):
        return _error(400, "input must be a non-empty string or list of strings", param="input")
    if len(raw) > _MAX_INPUTS:
        return _error(400, f"input must have at most {_MAX_INPUTS} items", param="input")
    texts: list[str] = raw
    if any(text == "" for text in texts):
        return _error(400, "input cannot contain an empty string", param="input")
    return texts


def _parse_dimensions(
    body: Mapping[str, Any], model: str, spec: tuple[int, bool]
) -> int | JSONResponse:
    default, adjustable = spec
    requested = body.get("dimensions")
    if requested is None:
        return default
    if not adjustable:
        return _error(400, f"model {model} does not support dimensions", param="dimensions")
    if (
        isinstance(requested, bool)
        or not isinstance(requested, int)
        or not 1 <= requested <= default
    ):
        return _error(400, f"dimensions must be an integer from 1 to {default}", param="dimensions")
    return requested


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "float":
        return vector
    packed = struct.pack(f"<{len(vector)}f", *vector)
    return base64.b64encode(packed).decode("ascii")


def build_app(state: FakeOpenAIState) -> Starlette:
    """Return the Starlette app of the local OpenAI-compatible API, driven by ``state``."""

    async def embeddings(request: Request) -> JSONResponse:
        refused = _gate(state, request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not valid json")
        if not isinstance(body, dict):
            return _error(400, "request body must be a json object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "model is required", param="model")
        spec = state.models.get(model)
        if spec is None:
            return _error(
                404, f"the model {model} does not exist", param="model", code="model_not_found"
            )
        texts = _parse_inputs(body.get("input"))
        if isinstance(texts, JSONResponse):
            return texts
        dimensions = _parse_dimensions(body, model, spec)
        if isinstance(dimensions, JSONResponse):
            return dimensions
        encoding_format = body.get("encoding_format") or "float"
        if encoding_format not in ("float", "base64"):
            return _error(400, "encoding_format must be float or base64", param="encoding_format")
        latency_s = state.latency_s
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode(hashed_embedding(text, dimensions), encoding_format),
            }
            for index, text in enumerate(texts)
        ]
        tokens = sum(token_count(text) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})

    async def list_models(request: Request) -> JSONResponse:
        refused = _gate(state, request)
        if refused is not None:
            return refused
        return JSONResponse({"object": "list", "data": [_model_body(m) for m in state.models]})

    async def get_model(request: Request) -> JSONResponse:
        refused = _gate(state, request)
        if refused is not None:
            return refused
        model_id = request.path_params["model_id"]
        if model_id not in state.models:
            return _error(
                404, f"the model {model_id} does not exist", param="model", code="model_not_found"
            )
        return JSONResponse(_model_body(model_id))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def admin_keys(request: Request) -> JSONResponse:
        # Lets other local processes (the drill, `kb-mcp secrets rotate`) activate or revoke
        # keys the way the OpenAI console would; off unless the state has an admin token.
        admin = state.admin_token
        presented = _bearer_key(request)
        if admin is None or presented is None or not hmac.compare_digest(presented, admin):
            return _unauthorized()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body must be json")
        if not isinstance(body, dict):
            return _error(400, "body must be a json object")
        allow, revoke = body.get("allow"), body.get("revoke")
        if isinstance(allow, str) and allow:
            state.allow_key(allow)
        if isinstance(revoke, str) and revoke:
            state.revoke_key(revoke)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/_admin/keys", admin_keys, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        ]
    )


class _ThreadUvicorn(uvicorn.Server):
    """A uvicorn server that reports when it has started listening."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._started_event.set()


class FakeOpenAIServer(FakeOpenAIState):
    """The local OpenAI-compatible API on 127.0.0.1, served from a background thread.

    It is its own state: ``allow_key``, ``fail_next``, ``latency_s`` and the
    counters act on the running server directly.
    """

    def __init__(
        self,
        keys: Iterable[str] = (),
        *,
        models: Mapping[str, tuple[int, bool]] = DEFAULT_MODELS,
    ) -> None:
        super().__init__(keys, models=models)
        self._server: _ThreadUvicorn | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    def __repr__(self) -> str:
        return f"FakeOpenAIServer(port={self._port}, running={self._server is not None})"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fake openai server is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """The URL to give ``openai.AsyncOpenAI(base_url=...)``, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("fake openai server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            build_app(self),
            lifespan="off",
            log_config=None,  # leave the process's logging configuration alone
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        started = threading.Event()
        server = _ThreadUvicorn(config, started)

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                sock.close()
                started.set()  # wake start() if the server died before listening

        thread = threading.Thread(target=serve, name=f"fake-openai-{port}", daemon=True)
        thread.start()
        if not started.wait(_START_TIMEOUT_S) or not server.started:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT_S)
            raise RuntimeError("fake openai server failed to start")
        self._server, self._thread, self._port = server, thread, port
        logger.debug("fake_openai.started", port=port)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT_S)
        self._server = self._thread = None
        logger.debug("fake_openai.stopped", port=self._port)

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
