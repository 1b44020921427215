"""A TCP proxy in front of PostgreSQL that a test drives through database faults.

It runs in the test's event loop on 127.0.0.1 (port 0, read back). Faults, each
deterministic:

- `go_down()`: every open connection is cut and the port refuses new ones (a database
  restart's first half); `come_back()` listens on the same port again;
- `stall()`: nothing is forwarded either way and new connections hang unanswered (a
  paused database, a network black hole as seen from the client); `unstall()` resumes;
- `cut_at_commit(forward=...)`: the next client message holding a COMMIT is forwarded to
  the server (or not) and that connection is then cut before any answer, so the client
  cannot know whether the commit happened.

`connections_seen` counts accepted connections; `commit_cut` is set when the trap went
off (a handshake for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["PgProxy", "pg_proxy"]


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def cut(self) -> None:
        for writer in (self.client, self.server):
            transport = writer.transport
            transport.abort()


@dataclass(eq=False)
class PgProxy:
    """See the module docstring."""

    upstream_host: str
    upstream_port: int
    port: int = 0
    connections_seen: int = 0
    _server: asyncio.Server | None = None
    _pairs: set[_Pair] = field(default_factory=set)
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _commit_trap: bool | None = None
    """None: no trap; True/False: forward the COMMIT before cutting, or not."""
    commit_cut: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def go_down(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pair in list(self._pairs):
            pair.cut()

    async def come_back(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    def stall(self) -> None:
        self._flowing.clear()

    def unstall(self) -> None:
        self._flowing.set()

    def cut_at_commit(self, *, forward: bool) -> None:
        self.commit_cut.clear()
        self._commit_trap = forward

    async def aclose(self) -> None:
        self.unstall()
        await self.go_down()
        for pair in list(self._pairs):
            for task in pair.tasks:
                task.cancel()
            await asyncio.gather(*pair.tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        await self._flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, pair, from_client=True)),
            asyncio.create_task(self._pump(up_reader, writer, pair, from_client=False)),
        ]
        try:
            await asyncio.gather(*pair.tasks, return_exceptions=True)
        finally:
            self._pairs.discard(pair)
            pair.cut()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: _Pair,
        *,
        from_client: bool,
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                trap = self._commit_trap
                if from_client and trap is not None and b"COMMIT" in data:
                    self._commit_trap = None
                    pair.client.transport.abort()  # the client never hears back
                    if trap:
                        writer.write(data)
                        writer.close()  # flushes the COMMIT to the server, then EOF
                    else:
                        writer.transport.abort()
                    self.commit_cut.set()
                    return
                writer.write(data)
                await writer.drain()
        pair.cut()


@contextlib.asynccontextmanager
async def pg_proxy(host: str, port: int) -> AsyncIterator[PgProxy]:
    """A started `PgProxy` in front of `host:port`, closed afterwards."""
    proxy = PgProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
