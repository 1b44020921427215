"""The local OpenAI-compatible embeddings API: real HTTP, real auth, hashed vectors.

It speaks enough of the OpenAI API for the official ``openai`` SDK:
``POST /v1/embeddings`` (float or base64 encoding), ``GET /v1/models`` and
``GET /v1/models/{id}``, with OpenAI-shaped error bodies, and an unauthenticated
``GET /healthz`` for container health checks.

Which keys it accepts (``AcceptedKeys``) plays the part of the OpenAI console: a fixed set
given at start, plus, with ``KeysFromSecrets``, every key held by a live version
(``AWSCURRENT``, ``AWSPENDING``, ``AWSPREVIOUS``) of the named secrets in the Secrets
Manager the AWS environment points at. An unknown key makes it re-read those secrets
(single-flight), so a key put in a secret by ``kb-mcp secrets
rotate openai`` or re-created by a seed is accepted at once, and a key two rotations old
is refused: rotation tooling needs no hook into this server. Nothing else about a key is
kept.

``LocalOpenAIServer`` runs the app with uvicorn on its own event loop in a background
thread, on 127.0.0.1 and a port the OS picked (``kb-mcp dev``); ``build_app(keys)``
returns the bare Starlette app (``python -m kb_mcp.devstack.embeddings_server`` serves it
as a process, docker compose runs that).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import structlog
import uvicorn
from secretswap.schemas import parse_secret
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from kb_mcp.devstack.hashing import hashed_embedding, token_count
from kb_mcp.errors import SecretFormatError
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.secrets.schemas import OpenAIKeySecret

__all__ = [
    "DEFAULT_MODELS",
    "AcceptedKeys",
    "KeysFromSecrets",
    "LocalOpenAIServer",
    "build_app",
]

logger = structlog.get_logger(__name__)

# Model id -> (default dimensions, whether `dimensions` may be requested).
DEFAULT_MODELS: Mapping[str, tuple[int, bool]] = {
    "text-embedding-3-small": (1536, True),
    "text-embedding-3-large": (3072, True),
    "text-embedding-ada-002": (1536, False),
}
LIVE_STAGES = ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS")
_MODEL_CREATED = 1_705_953_180
_MAX_INPUTS = 2048
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
_LOADED_MAX_AGE_S = 5.0

KeyLoader = Callable[[], list[str]]
"""Reads the keys a secret store holds now (blocking; run in a worker thread)."""


class KeysFromSecrets:
    """The keys held by the live versions of Secrets Manager secrets (boto3, blocking)."""

    def __init__(
        self, names: Sequence[str], *, region: str, endpoint_url: str | None = None
    ) -> None:
        self.names = tuple(names)
        self._region = region
        self._endpoint_url = endpoint_url

    def __repr__(self) -> str:
        return f"KeysFromSecrets(names={list(self.names)}, endpoint_url={self._endpoint_url!r})"

    def __call__(self) -> list[str]:
        import boto3  # the local extra's moto brings it; only this loader needs it

        client = boto3.client(
            "secretsmanager", region_name=self._region, endpoint_url=self._endpoint_url
        )
        keys: list[str] = []
        try:
            for name in self.names:
                keys.extend(self._live_keys(client, name))
        finally:
            client.close()
        secret_registry().register(*keys)
        return keys

    @staticmethod
    def _live_keys(client: Any, name: str) -> list[str]:
        # By VersionId: moto answers some stage reads with the AWSCURRENT value.
        try:
            described = client.describe_secret(SecretId=name)
        except client.exceptions.ResourceNotFoundException:
            return []  # not seeded yet
        keys: list[str] = []
        for version, stages in (described.get("VersionIdsToStages") or {}).items():
            if not set(stages or ()) & set(LIVE_STAGES):
                continue
            raw = client.get_secret_value(SecretId=name, VersionId=version)
            try:
                secret = parse_secret(OpenAIKeySecret, str(raw["SecretString"]), secret_name=name)
            except SecretFormatError:
                continue
            keys.append(secret.api_key.get_secret_value())
        return keys


class AcceptedKeys:
    """The keys the endpoint accepts: a fixed set, plus whatever ``loader`` reads.

    ``allowed`` is the fast, in-memory check; ``check`` falls back to re-reading the
    loader's keys on a miss, or when a loaded key was read over ``max_age_s`` ago.
    """

    def __init__(
        self,
        keys: Iterable[str] = (),
        *,
        loader: KeyLoader | None = None,
        max_age_s: float = _LOADED_MAX_AGE_S,
    ) -> None:
        self._lock = threading.Lock()
        self._fixed: set[str] = set(keys)
        self._loaded: frozenset[str] = frozenset()
        self._loader = loader
        self._loaded_at: float | None = None
        self._max_age_s = max_age_s
        self._reload_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        with self._lock:
            counts = (len(self._fixed), len(self._loaded))
        return f"AcceptedKeys(fixed={counts[0]}, loaded={counts[1]}, loader={self._loader!r})"

    def allow(self, key: str) -> None:
        """Accept ``key`` from now on (other accepted keys stay accepted)."""
        with self._lock:
            self._fixed.add(key)

    def revoke(self, key: str) -> None:
        """Refuse ``key`` from now on (unless the loader still reads it); unknown: ignored."""
        with self._lock:
            self._fixed.discard(key)

    def replace(self, keys: Iterable[str]) -> None:
        """Replace the whole fixed set."""
        with self._lock:
            self._fixed = set(keys)

    def allowed(self, key: str) -> bool:
        """Whether ``key`` is accepted by what is known now (no reload)."""
        with self._lock:
            return key in self._fixed or key in self._loaded

    async def reload(self) -> None:
        """Re-read the loader's keys now (a no-op without a loader)."""
        if self._loader is None:
            return
        started = time.monotonic()
        keys = frozenset(await asyncio.to_thread(self._loader))
        with self._lock:
            self._loaded = keys
        self._loaded_at = started
        logger.debug("local_openai.keys_reloaded", keys=len(keys))

    async def check(self, key: str) -> bool:
        """Whether ``key`` is accepted, re-reading the loader's keys when unsure.

        Unsure is a miss, or a hit only among loaded keys read more than ``max_age_s``
        ago (the key may have been retired since). Single-flight: requests that arrive
        while a reload runs wait for it, and a reload begun after a request arrived
        answers it; a request never waits for more than one.
        """
        if self._known(key) or self._loader is None:
            return self.allowed(key)
        arrived = time.monotonic()
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            last = self._loaded_at
            # A read begun after this request arrived answers it; so does one that ran
            # while it waited and left the key known.
            if (last is None or last < arrived) and not self._known(key):
                try:
                    await self.reload()
                except Exception as exc:  # an unreachable store refuses the key, clearly
                    logger.warning("local_openai.keys_unavailable", error=type(exc).__name__)
        return self.allowed(key)

    def _known(self, key: str) -> bool:
        """A fixed key, or a loaded one read less than ``max_age_s`` ago."""
        last = self._loaded_at
        fresh = last is not None and time.monotonic() - last < self._max_age_s
        with self._lock:
            return key in self._fixed or (fresh and key in self._loaded)


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


def bearer_key(request: Request) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


async def _gate(keys: AcceptedKeys, request: Request) -> JSONResponse | None:
    """The 401 to send instead when the bearer key is not accepted, else None."""
    key = bearer_key(request)
    if key is None or not await keys.check(key):
        return _unauthorized()
    return None


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


def build_app(
    keys: AcceptedKeys, *, models: Mapping[str, tuple[int, bool]] = DEFAULT_MODELS
) -> Starlette:
    """The Starlette app of the local OpenAI-compatible API, accepting ``keys``."""

    async def embeddings(request: Request) -> JSONResponse:
        refused = await _gate(keys, request)
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
        spec = models.get(model)
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
        refused = await _gate(keys, request)
        if refused is not None:
            return refused
        return JSONResponse({"object": "list", "data": [_model_body(m) for m in models]})

    async def get_model(request: Request) -> JSONResponse:
        refused = await _gate(keys, request)
        if refused is not None:
            return refused
        model_id = request.path_params["model_id"]
        if model_id not in models:
            return _error(
                404, f"the model {model_id} does not exist", param="model", code="model_not_found"
            )
        return JSONResponse(_model_body(model_id))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
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


class LocalOpenAIServer:
    """The local OpenAI-compatible API on 127.0.0.1, served from a background thread.

    ``app`` defaults to ``build_app(keys)``; a wrapper around it (tests add fault
    injection that way) may be given instead.
    """

    def __init__(self, keys: AcceptedKeys, *, app: ASGIApp | None = None) -> None:
        self.keys = keys
        self._app: ASGIApp = app if app is not None else build_app(keys)
        self._server: _ThreadUvicorn | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self._port}, running={self._server is not None})"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("local openai server is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """The URL to give ``openai.AsyncOpenAI(base_url=...)``, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("local openai server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
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

        thread = threading.Thread(target=serve, name=f"local-openai-{port}", daemon=True)
        thread.start()
        if not started.wait(_START_TIMEOUT_S) or not server.started:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT_S)
            raise RuntimeError("local openai server failed to start")
        self._server, self._thread, self._port = server, thread, port
        logger.debug("local_openai.started", port=port)

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
        logger.debug("local_openai.stopped", port=self._port)

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
