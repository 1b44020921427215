"""`OpenAIClientHolder`: the current `AsyncOpenAI` client, swapped on key rotation.

A holder over the hot-swap core (`secretswap.HotSwap`). Each key gets an independent client (never
`with_options`/`copy`: those share one HTTP pool, and closing one kills the other's
requests); all of them share one TLS context (loading the CA bundle costs ~90 ms of
event-loop time per client). A rotation optionally probes the new key (`GET /models`)
before the swap. A 401 asks the refresher for a single-flight recovery of the key
secret; with a newer version in service the request is retried once, otherwise a clear
`EmbeddingAuthError` is raised.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import httpx2
import openai
from secretswap import AuthFailed, HotSwap, Observer, Refresher, SwapOwner
from secretswap.metrics import MetricsRegistry

from kb_mcp.embeddings import lean
from kb_mcp.errors import EmbeddingAuthError, EmbeddingError, RotationError
from kb_mcp.observability.swap_metrics import SwapMetrics
from kb_mcp.secrets.schemas import OpenAIKeySecret

__all__ = ["HttpTransport", "OpenAIClientHolder", "aiohttp_available", "http_client"]

T = TypeVar("T")


def _tls_context() -> ssl.SSLContext:
    """The default verifying context, with certifi's bundle when installed (as httpx does)."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi ships with the HTTP stack
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


HttpTransport = Literal["auto", "aiohttp", "httpx"]
"""The `openai` client's HTTP transport (`http_client`)."""


def aiohttp_available() -> bool:
    """Whether `openai.DefaultAioHttpClient` can be built (aiohttp is importable)."""
    return importlib.util.find_spec("aiohttp") is not None


def http_client(transport: HttpTransport, verify: ssl.SSLContext) -> httpx2.AsyncClient:
    """The HTTP client of an `AsyncOpenAI`: the SDK's own aiohttp transport
    (`openai.DefaultAioHttpClient`, its `aiohttp` extra) or its httpx default.

    "auto" takes aiohttp when it is installed (aiobotocore brings it): its C HTTP parser
    took ~20 % less client CPU per sequential call (`python -m bench.bench_embeddings`) and
    kb_search served 1.3x the requests at 16 clients (`python -m bench.bench_mcp
    --before-tree`). Both keep the client's timeouts, retries, proxies from the environment
    and its errors (`openai.APIConnectionError`, `APITimeoutError`, ...).
    """
    use_aiohttp = transport == "aiohttp" or (transport == "auto" and aiohttp_available())
    if use_aiohttp:
        client: httpx2.AsyncClient = openai.DefaultAioHttpClient(verify=verify)
        return client
    return openai.DefaultAsyncHttpxClient(verify=verify)


@dataclass
class _ClientAdapter:
    """How to build, probe and close an `AsyncOpenAI` client; 401 is the auth failure."""

    secret_name: str
    base_url: str | None
    timeout_s: float
    max_retries: int
    probe_on_rotation: bool
    transport: HttpTransport = "auto"
    _ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    async def build(self, value: OpenAIKeySecret, version_id: str) -> openai.AsyncOpenAI:
        if self._ssl_context is None:
            self._ssl_context = _tls_context()
        return openai.AsyncOpenAI(
            api_key=value.api_key.get_secret_value(),
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            http_client=http_client(self.transport, self._ssl_context),
        )

    async def probe(self, resource: openai.AsyncOpenAI, version_id: str) -> None:
        if not self.probe_on_rotation:
            return
        try:
            await resource.models.list()
        except openai.APIError as exc:
            status = getattr(exc, "status_code", None)
            raise RotationError(
                f"new key of secret {self.secret_name} version {version_id} failed the "
                f"probe ({type(exc).__name__}{f' http {status}' if status else ''})",
                secret_name=self.secret_name,
                version_id=version_id,
                hint="check the new key is active in the OpenAI console",
            ) from exc

    async def close(self, resource: openai.AsyncOpenAI) -> None:
        await resource.close()

    async def terminate(self, resource: openai.AsyncOpenAI) -> None:
        await resource.close()

    def is_auth_failure(self, exc: BaseException) -> bool:
        return isinstance(exc, openai.AuthenticationError)

    def describe(self, resource: openai.AsyncOpenAI) -> dict[str, object]:
        return {}


class OpenAIClientHolder(SwapOwner[OpenAIKeySecret, openai.AsyncOpenAI]):
    """Owns the OpenAI client for one API-key secret; implements `EmbeddingsBackend`."""

    def __init__(
        self,
        secret_name: str,
        *,
        tasks: asyncio.TaskGroup,
        refresher: Refresher | None = None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        probe_on_rotation: bool = True,
        transport: HttpTransport = "auto",
        drain_timeout_s: float = 30.0,
        metrics: MetricsRegistry | None = None,
        observers: tuple[Observer, ...] = (),
    ) -> None:
        """`refresher`: records the version in service and recovers a 401 (None: neither)."""
        registry = metrics or MetricsRegistry()
        adapter = _ClientAdapter(
            secret_name, base_url, timeout_s, max_retries, probe_on_rotation, transport
        )
        swap: HotSwap[OpenAIKeySecret, openai.AsyncOpenAI] = HotSwap(
            adapter,
            secret_name,
            tasks=tasks,
            kind="openai.client",
            drain_timeout_s=drain_timeout_s,
            recover=None if refresher is None else refresher.recover,
            metrics=registry,
            observers=(SwapMetrics(registry, swaps="OpenAIClientSwaps"), *observers),
        )
        super().__init__(swap, refresher)

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        """Embeddings for `texts` in order (the `EmbeddingsBackend` port)."""

        async def call(client: openai.AsyncOpenAI) -> list[list[float]]:
            return await lean.create_embeddings(client, texts, model=model, dimensions=dimensions)

        return await self.call(call)

    async def call(self, operation: Callable[[openai.AsyncOpenAI], Awaitable[T]]) -> T:
        """Run `operation` with the current client; on 401 recover and retry once."""
        try:
            return await self._swap.run(operation)
        except AuthFailed as exc:
            raise EmbeddingAuthError(
                f"embeddings endpoint refused the api key of secret {self.secret_name} version "
                f"{exc.version_id} and the secret has no newer version",
                hint=f"rotate secret {self.secret_name} to an active key; see secrets/RUNBOOK.md",
            ) from exc.__cause__
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"embeddings endpoint answered http {exc.status_code}",
                hint="check OPENAI_BASE_URL, the model name and the account's limits",
                status=exc.status_code,
            ) from exc
        except openai.APIError as exc:
            raise EmbeddingError(
                f"embeddings endpoint unreachable ({type(exc).__name__})",
                hint="check OPENAI_BASE_URL and the network route to it",
            ) from exc
