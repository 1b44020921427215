"""Real pieces for knowledge-base tests: an asyncpg pool source, an OpenAI backend over the
fake OpenAI server, a migrated document store, a small corpus, and a uvicorn server
running an ASGI app in the test's event loop on 127.0.0.1, port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import asyncpg
import openai
import uvicorn
from starlette.types import ASGIApp

from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import apply_migrations
from kb_mcp.db.pool import keep_session
from kb_mcp.db.vectors import SESSION_EF_SEARCH, init_connection
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.errors import EmbeddingError
from kb_mcp.server.context import AppContext
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer

__all__ = [
    "CORPUS",
    "DIMENSIONS",
    "MODEL",
    "KbStack",
    "OpenAIBackend",
    "PoolSource",
    "kb_stack",
    "serve_asgi",
]

DIMENSIONS = 256
MODEL = "text-embedding-3-small"

CORPUS: dict[str, tuple[str, list[str]]] = {
    "Vacuuming PostgreSQL tables": (
        "PostgreSQL autovacuum removes dead tuples left by updates and deletes. Tune "
        "autovacuum_vacuum_scale_factor for large tables so vacuum runs before bloat grows, "
        "and watch pg_stat_user_tables for the last autovacuum time.",
        ["postgres", "ops"],
    ),
    "Baking sourdough bread": (
        "A sourdough starter of flour and water ferments with wild yeast. Feed the starter, "
        "mix the dough, let it rise overnight, shape the loaf and bake it in a hot dutch oven.",
        ["cooking"],
    ),
    "Rotating secrets in AWS Secrets Manager": (
        "Secrets Manager rotation creates an AWSPENDING version, tests it, then moves the "
        "AWSCURRENT label. Applications re-read the secret after rotation to pick up the new "
        "password without a restart.",
        ["aws", "ops", "security"],
    ),
    "Photosynthesis in plants": (
        "Chlorophyll in the leaves absorbs sunlight; plants turn carbon dioxide and water "
        "into glucose and release oxygen. Photosynthesis happens in the chloroplasts.",
        ["biology"],
    ),
    "Ownership and borrowing in Rust": (
        "Rust ownership gives every value a single owner; borrowing lends references without "
        "moving the value, and the borrow checker rejects dangling references at compile time.",
        ["rust", "programming"],
    ),
}


class PoolSource:
    """A `ConnectionSource` over a plain asyncpg pool (the runtime uses `PoolManager`)."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection[Any]]:
        async with self.pool.acquire() as conn:
            yield cast("asyncpg.Connection[Any]", conn)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, app: AppDatabase, which: Literal["a", "b"] = "a", *, max_size: int = 4
    ) -> AsyncIterator[PoolSource]:
        user, password = app.credentials(which)
        pool = await asyncpg.create_pool(
            host=app.host,
            port=app.port,
            user=user,
            password=password,
            database=app.database,
            min_size=1,
            max_size=max_size,
            init=init_connection,
            reset=keep_session,  # as the runtime's pool: init's session settings stay
        )
        try:
            yield cls(pool)
        finally:
            await pool.close()


class OpenAIBackend:
    """An `EmbeddingsBackend` over `openai.AsyncOpenAI` (the runtime uses its holder)."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self.client = client
        self.calls: list[int] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, base_url: str, api_key: str) -> AsyncIterator[OpenAIBackend]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        try:
            yield cls(client)
        finally:
            await client.close()

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        self.calls.append(len(texts))
        try:
            if dimensions is None:
                response = await self.client.embeddings.create(input=list(texts), model=model)
            else:
                response = await self.client.embeddings.create(
                    input=list(texts), model=model, dimensions=dimensions
                )
        except openai.APIError as exc:
            raise EmbeddingError(f"embeddings call failed ({type(exc).__name__})") from exc
        return [list(item.embedding) for item in sorted(response.data, key=lambda d: d.index)]


@dataclass(frozen=True)
class KbStack:
    """A migrated database, an embedder on the fake OpenAI server, and their store."""

    source: PoolSource
    backend: OpenAIBackend
    embedder: Embedder
    store: DocumentStore
    context: AppContext

    async def count(self, table: Literal["documents", "chunks"]) -> int:
        async with self.source.acquire() as conn:
            value = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)
        return int(value)

    async def add_corpus(self) -> dict[str, str]:
        """Store `CORPUS`; title -> id."""
        ids: dict[str, str] = {}
        for title, (content, tags) in CORPUS.items():
            added = await self.store.add_document(
                title=title, content=content, tags=tags, metadata={"source": "corpus"}
            )
            ids[title] = str(added.id)
        return ids


@contextlib.asynccontextmanager
async def kb_stack(
    app: AppDatabase,
    fake_openai: FakeOpenAIServer,
    api_key: str,
    *,
    dimensions: int = DIMENSIONS,
    which: Literal["a", "b"] = "a",
    model: str = MODEL,
) -> AsyncIterator[KbStack]:
    async with (
        PoolSource.open(app, which) as source,
        OpenAIBackend.open(fake_openai.base_url, api_key) as backend,
    ):
        await apply_migrations(source, dimensions=dimensions)
        embedder = Embedder(backend, model=model, dimensions=dimensions, batch_size=8)
        yield KbStack(
            source=source,
            backend=backend,
            embedder=embedder,
            store=DocumentStore(source, embedder, session_ef_search=SESSION_EF_SEARCH),
            context=AppContext(db=source, embedder=embedder, session_ef_search=SESSION_EF_SEARCH),
        )


class _Uvicorn(uvicorn.Server):
    """uvicorn that says when it listens and leaves signal handling to pytest."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.listening.set()  # started or not: `started` says which


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, **options: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1:<free port> in this event loop; yields the base URL.

    `options` go to `uvicorn.Config` (limits: `HttpLimits().uvicorn_options(...)`).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        **options,
    )
    server = _Uvicorn(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    task.add_done_callback(lambda _: server.listening.set())  # failed before startup
    try:
        await server.listening.wait()
        if not server.started:
            await task
            raise RuntimeError("uvicorn stopped before listening")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
