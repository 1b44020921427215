"""Exceptions that are not kb-mcp's, as a Hypothesis strategy: what an adapter, a provider
or an observer written by someone else (or a driver under it) can raise.

`foreign_errors()` draws builtin and third-party exception classes (asyncpg, openai, httpx2,
botocore, pydantic-core, ssl, socket, json...) and ad-hoc subclasses of common bases, each
instance carrying a fake secret in its message: whoever logs the message of a foreign
exception fails the suite's leak guard. `our_errors()` draws kb-mcp's own errors, whose
messages are written never to hold a value.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable

import asyncpg
import botocore.exceptions
import httpx2
import openai
import pydantic_core
from hypothesis import strategies as st

from kb_mcp.errors import (
    DatabaseAuthError,
    DatabaseUnavailableError,
    EmbeddingError,
    KbMcpError,
    SecretsUnavailableError,
)
from tests.support.fakes import fake_password

__all__ = ["any_errors", "foreign_errors", "our_errors"]

Factory = Callable[[str], Exception]

_REQUEST = httpx2.Request("GET", "http://127.0.0.1:9/v1/models")

_FACTORIES: tuple[tuple[str, Factory], ...] = (
    ("Exception", Exception),
    ("ValueError", ValueError),
    ("TypeError", TypeError),
    ("KeyError", KeyError),
    ("IndexError", IndexError),
    ("AttributeError", AttributeError),
    ("RuntimeError", RuntimeError),
    ("NotImplementedError", NotImplementedError),
    ("AssertionError", AssertionError),
    ("ZeroDivisionError", ZeroDivisionError),
    ("RecursionError", RecursionError),
    ("StopIteration", StopIteration),
    ("StopAsyncIteration", StopAsyncIteration),
    ("LookupError", LookupError),
    ("OSError", OSError),
    ("ConnectionError", ConnectionError),
    ("ConnectionResetError", ConnectionResetError),
    ("ConnectionRefusedError", ConnectionRefusedError),
    ("BrokenPipeError", BrokenPipeError),
    ("PermissionError", PermissionError),
    ("FileNotFoundError", FileNotFoundError),
    ("TimeoutError", TimeoutError),
    ("asyncio.InvalidStateError", asyncio.InvalidStateError),
    ("UnicodeDecodeError", lambda m: UnicodeDecodeError("utf-8", m.encode(), 0, 1, m)),
    ("json.JSONDecodeError", lambda m: json.JSONDecodeError(m, m, 0)),
    ("ssl.SSLError", lambda m: ssl.SSLError(1, m)),
    ("socket.gaierror", lambda m: socket.gaierror(-2, m)),
    ("ExceptionGroup", lambda m: ExceptionGroup(m, [ValueError(m)])),
    ("asyncpg.InterfaceError", asyncpg.InterfaceError),
    ("asyncpg.InternalClientError", asyncpg.InternalClientError),
    ("asyncpg.PostgresConnectionError", asyncpg.PostgresConnectionError),
    ("asyncpg.ConnectionDoesNotExistError", asyncpg.ConnectionDoesNotExistError),
    ("asyncpg.InvalidPasswordError", asyncpg.InvalidPasswordError),
    ("asyncpg.QueryCanceledError", asyncpg.QueryCanceledError),
    ("openai.APIConnectionError", lambda m: openai.APIConnectionError(message=m, request=_REQUEST)),
    (
        "openai.AuthenticationError",
        lambda m: openai.AuthenticationError(
            m, response=httpx2.Response(401, request=_REQUEST), body=None
        ),
    ),
    ("httpx2.ConnectError", httpx2.ConnectError),
    ("httpx2.ReadTimeout", httpx2.ReadTimeout),
    (
        "botocore.EndpointConnectionError",
        lambda m: botocore.exceptions.EndpointConnectionError(endpoint_url=m),
    ),
    (
        "botocore.ClientError",
        lambda m: botocore.exceptions.ClientError(
            {"Error": {"Code": "InternalFailure", "Message": m}}, "GetSecretValue"
        ),
    ),
    ("pydantic_core.PydanticCustomError", lambda m: pydantic_core.PydanticCustomError("kind", m)),
)

_BASES: tuple[type[Exception], ...] = (
    Exception,
    ValueError,
    RuntimeError,
    OSError,
    LookupError,
    ConnectionError,
    asyncpg.InterfaceError,
    httpx2.HTTPError,
)


def _adhoc(base: type[Exception], name: str) -> Factory:
    cls: type[Exception] = type(name, (base,), {})
    return cls


def _instance(factory: Factory) -> Exception:
    """An instance whose message holds a fake secret (watched by the leak guard)."""
    return factory(f"connect to postgresql://app:{fake_password()}@db/kb failed")


def foreign_errors() -> st.SearchStrategy[Exception]:
    """Instances of exception classes kb-mcp does not own, messages carrying a secret."""
    known = st.sampled_from([factory for _, factory in _FACTORIES])
    adhoc = st.builds(
        _adhoc,
        st.sampled_from(_BASES),
        st.from_regex(r"[A-Z][a-z]{1,12}(Error|Failure|Oops)", fullmatch=True),
    )
    return st.one_of(known, adhoc).map(_instance)


def our_errors() -> st.SearchStrategy[Exception]:
    """kb-mcp's own errors, as an adapter over the core would raise them."""
    makers: list[Callable[[], Exception]] = [
        lambda: DatabaseAuthError("database refused the credentials"),
        lambda: DatabaseUnavailableError("database unreachable (OSError)"),
        lambda: EmbeddingError("embeddings endpoint answered http 500", status=500),
        lambda: SecretsUnavailableError("secrets manager unreachable", secret_name="s"),
        lambda: KbMcpError("something of ours failed"),
    ]
    return st.sampled_from(makers).map(lambda make: make())


def any_errors() -> st.SearchStrategy[Exception]:
    """Foreign or ours."""
    return st.one_of(foreign_errors(), our_errors())
