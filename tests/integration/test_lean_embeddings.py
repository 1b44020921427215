"""The lean embeddings call against a real local OpenAI-compatible server, through each of
the client's HTTP transports (`kb_mcp.embeddings.holder.http_client`)."""

from __future__ import annotations

import math
import socket
import ssl

import openai
import pytest

from kb_mcp.devstack.hashing import hashed_embedding
from kb_mcp.embeddings.holder import HttpTransport, http_client
from kb_mcp.embeddings.lean import create_embeddings
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.fakes import fake_openai_key

MODEL = "text-embedding-3-small"


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest) -> HttpTransport:
    """Each test that asks for it runs once per transport."""
    value: HttpTransport = request.param
    return value


def _client(
    server: FakeOpenAIServer | str, key: str, transport: HttpTransport, *, retries: int = 0
) -> openai.AsyncOpenAI:
    base_url = server if isinstance(server, str) else server.base_url
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=base_url,
        max_retries=retries,
        timeout=5.0,
        http_client=http_client(transport, ssl.create_default_context()),
    )


def test_the_transport_is_the_one_asked_for(transport: HttpTransport) -> None:
    client = http_client(transport, ssl.create_default_context())
    assert isinstance(client, openai.DefaultAioHttpClient) == (transport == "aiohttp")


async def test_an_unreachable_endpoint_is_the_sdks_connection_error(
    openai_api_key: str, transport: HttpTransport
) -> None:
    """Refused connections are `openai.APIConnectionError` (the holder's "unreachable")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        async with _client(f"http://127.0.0.1:{port}/v1", openai_api_key, transport) as client:
            with pytest.raises(openai.APIConnectionError):
                await create_embeddings(client, ["q"], model=MODEL, dimensions=8)


async def test_vectors_match_the_server_in_order(
    fake_openai: FakeOpenAIServer, openai_api_key: str, transport: HttpTransport
) -> None:
    """Base64 answers decode to the server's vectors (float32 precision), in input order."""
    texts = ["rotating keys", "two login roles", "rotating keys again"]
    async with _client(fake_openai, openai_api_key, transport) as client:
        vectors = await create_embeddings(client, texts, model=MODEL, dimensions=64)
    assert len(vectors) == 3
    for text, vector in zip(texts, vectors, strict=True):
        expected = hashed_embedding(text, 64)
        assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(vector, expected, strict=True))


async def test_native_dimensions_when_none_requested(
    fake_openai: FakeOpenAIServer, openai_api_key: str, transport: HttpTransport
) -> None:
    """Without `dimensions` the model answers at its native size (1536 for -3-small)."""
    async with _client(fake_openai, openai_api_key, transport) as client:
        (vector,) = await create_embeddings(client, ["q"], model=MODEL, dimensions=None)
    assert len(vector) == 1536


async def test_a_refused_key_raises_the_sdks_authentication_error(
    fake_openai: FakeOpenAIServer, transport: HttpTransport
) -> None:
    """401 is still `openai.AuthenticationError`, which the holder's refresh relies on."""
    async with _client(fake_openai, fake_openai_key(), transport, retries=2) as client:
        with pytest.raises(openai.AuthenticationError):
            await create_embeddings(client, ["q"], model=MODEL, dimensions=8)
    assert fake_openai.unauthorized_total == 1  # a 401 is not retried


async def test_server_errors_are_retried_by_the_client(
    fake_openai: FakeOpenAIServer, openai_api_key: str, transport: HttpTransport
) -> None:
    """A 500 then success: the SDK's retry still applies to the lean call."""
    fake_openai.fail_next(1, 500, retry_after_s=0.0)
    async with _client(fake_openai, openai_api_key, transport, retries=2) as client:
        (vector,) = await create_embeddings(client, ["q"], model=MODEL, dimensions=8)
    assert len(vector) == 8
    assert fake_openai.injected_failures_total == 1
