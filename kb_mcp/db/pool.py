"""`PoolManager`: an asyncpg pool whose credentials rotate without failing a request.

A holder over the hot-swap core (`secretswap.HotSwap`): this module says how to build a pool from
`PostgresCredentials` (validate with one `asyncpg.connect` + `SELECT 1` first: never
`expire_connections()` with unproven credentials, it empties the pool), how to probe it
(`SELECT 1` through the new pool), how to close it (`close()`, `terminate()` past the
drain timeout), and that SQLSTATE 28P01/28000 is an auth failure. The core does the
swap, the per-generation occupancy and the bounded drain.

A new connection refused with 28P01/28000 asks the refresher for a single-flight
recovery of the credentials secret (it also offers AWSPENDING: the single-user rotation
window); when a newer version went into service the acquire is retried once, otherwise
`DatabaseAuthError` is raised. That retry is the core's (`HotSwap.leased`), written once
for every resource.

A swap does not double the connections a fleet holds: a replacement pool opens the one
connection its probe needs (its `min_size` floor comes back once it is in service) and
grows with demand, and the moment it is in service the old pool is
shed (`_PoolAdapter.shed`, over the asyncpg internals of `asyncpg_internals`): its idle
connections are closed at once, its floor is
dropped so asyncpg does not reopen them, and each connection still in use is closed as
it is released, unless a caller queued on the old pool needs it (a queued caller reuses
a released connection: reconnecting could meet credentials rotated since). Work in
flight on the old pool finishes on its own connection; the core's bounded drain then
closes what is left. The peak during a rotation is about one instance's
demand plus one connection, not two full pools.

A failure to release a connection after the caller's block completed does not reach the
caller (its work is done): it is logged, counted (`PoolReleaseFailures`) and the
connection is discarded.

A released connection keeps its session: asyncpg still rolls back a transaction left
open, but not its default reset (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
ALL`, a round trip per release). kb-mcp keeps no session state on a pooled connection
but what the pool's `init` set (`kb_mcp.db.vectors.init_connection`), which that reset
would undo: statements use `SET LOCAL`/`set_config(..., true)` and transaction-scoped
advisory locks; the one session lock, the migration's, is released by it, or its
connection closed.

Bounded in time (`kb_mcp.deadline`): an acquire waits at most what is left of the
request's deadline; a connection given back by a request past its deadline waits for
asyncpg's cancel request to land only until the answer is due (a request's work is cut off
`CANCEL_GRACE_S` before that), then is terminated, so a paused server cannot make the
answer late. Every connection has TCP keepalives and
`TCP_USER_TIMEOUT` (`kb_mcp.db.keepalive`), and two server-side backstops in its startup
settings: `statement_timeout` (the request budget plus a margin: a statement whose cancel
never arrived still ends) and `client_connection_check_interval` (a backend whose client
went away stops its query). Work that is not a request and may run long (migrations) sets
its own `statement_timeout` for the session and resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
import structlog
from secretswap import AuthFailed, Generation, HotSwap, Observer, Refresher, SwapOwner
from secretswap.metrics import MetricsRegistry
from secretswap.port import LoadedSecret

from kb_mcp.db import asyncpg_internals
from kb_mcp.db.keepalive import SocketOptions, with_socket_options
from kb_mcp.deadline import capped, current
from kb_mcp.errors import DatabaseAuthError, DatabaseUnavailableError, ResourceClosedError
from kb_mcp.observability.swap_metrics import SwapMetrics
from kb_mcp.secrets.schemas import PostgresCredentials

__all__ = ["AUTH_ERRORS", "InitConnection", "PoolManager", "keep_session"]

log = structlog.get_logger(__name__)

AUTH_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable, DNS (gaierror), TLS (SSLError)
    asyncio.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,  # connection lost, does not exist, rejected
    asyncpg.InterfaceError,  # closed or closing pool or connection, client configuration
    asyncpg.InternalClientError,  # the driver's protocol state (e.g. a cut-off message)
)
"""Every other class asyncpg or the OS raises while connecting: "unavailable" in our tree
(`asyncpg.PostgresError` beyond these is mapped on its own, with its SQLSTATE)."""
Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[Any]"
CANCEL_GRACE_S = 0.5
"""How long before the answer is due a request's work is cut off: the time a connection
released by it has to confirm the cancel of its statement before it is terminated."""
_RELEASE_FLOOR_S = 0.05
"""A release never gets less than this (an answer already late is not made later by it)."""
CLIENT_CHECK_INTERVAL_MS = 1000
"""`client_connection_check_interval`: how often a busy backend looks for its client."""
InitConnection: TypeAlias = "Callable[[asyncpg.Connection[Any]], Awaitable[None]]"


async def keep_session(conn: asyncpg.Connection[Any]) -> None:
    """A pool's reset on release: nothing beyond asyncpg's own rollback (module doc)."""


@dataclass(frozen=True, slots=True)
class _Pool:
    pool: asyncpg.Pool[Any]
    identity: str


@dataclass
class _PoolAdapter:
    """How to build, probe, close an asyncpg pool, and what an auth refusal looks like."""

    secret_name: str
    min_size: int
    max_size: int
    connect_timeout_s: float
    init: InitConnection | None
    statement_timeout_s: float | None = None
    socket_options: SocketOptions | None = None
    host_override: str | None = None
    """This region's database host, used instead of the secret's (KB_MCP_DB_HOST_OVERRIDE)."""
    _built: bool = False
    """After the first (boot) pool, a replacement opens one connection, not `min_size`."""

    async def build(self, value: PostgresCredentials, version_id: str) -> _Pool:
        if self.host_override is not None:
            value = value.model_copy(update={"host": self.host_override})
        kwargs = {**value.connect_kwargs(), "server_settings": self.server_settings()}
        identity = value.identity()
        with self._translated(identity, version_id):
            conn = await asyncpg.connect(**kwargs, timeout=self.connect_timeout_s)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
            # A replacement opens the one connection its probe needs; its floor comes
            # back when it is in service (`in_service`), once the old pool let go.
            first = not self._built
            pool = await asyncpg.create_pool(
                **kwargs,
                min_size=self.min_size if first else 0,
                init_size=self.min_size if first else min(1, self.max_size),
                max_size=self.max_size,
                timeout=self.connect_timeout_s,
                init=self.pool_init(),  # type: ignore[arg-type]  # stubs want a Protocol; same signature
                reset=keep_session,
            )
        self._built = True
        return _Pool(pool=pool, identity=identity)

    def server_settings(self) -> dict[str, str]:
        """Startup settings of every connection: the server-side backstops (module doc)."""
        settings = {"client_connection_check_interval": str(CLIENT_CHECK_INTERVAL_MS)}
        if self.statement_timeout_s is not None:
            settings["statement_timeout"] = str(int(self.statement_timeout_s * 1000))
        return settings

    def pool_init(self) -> InitConnection | None:
        """The pool's `init`: socket options first, then the application's."""
        if self.socket_options is None:
            return self.init
        return with_socket_options(self.init, self.socket_options)

    def in_service(self, resource: _Pool) -> None:
        """A replacement just went into service: restore its `min_size` floor (asyncpg's
        maintenance task opens the missing connections in the background)."""
        asyncpg_internals.set_floor(resource.pool, self.min_size)
        asyncpg_internals.refill_to_floor(resource.pool)

    async def probe(self, resource: _Pool, version_id: str) -> None:
        with self._translated(resource.identity, version_id):
            async with resource.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")

    async def close(self, resource: _Pool) -> None:
        await resource.pool.close()

    async def terminate(self, resource: _Pool) -> None:
        resource.pool.terminate()

    def shed(self, resource: _Pool, users: int) -> int:
        """Close the idle connections of a pool out of service that nobody waits for.

        `users`: the generation's occupancy (callers holding a connection or queued in
        `acquire()`), so `users` minus connections in use is how many callers are queued;
        that many idle connections are left for them (a waiter reuses a released
        connection; a reconnect could meet credentials rotated since). Over asyncpg
        internals (`asyncpg_internals`): a holder with a live connection and no
        `_in_use` future is idle; `Connection.terminate()` is synchronous (nothing can
        pick a holder up half-closed; asyncpg itself terminates idle connections past
        `max_inactive_connection_lifetime`); the floor goes to zero so the min-size
        maintenance task does not reconnect them. Never awaits. Idempotent.
        """
        pool = resource.pool
        if pool.is_closing():
            return 0
        asyncpg_internals.set_floor(pool, 0)
        holders = asyncpg_internals.holders(pool)
        idle = [h for h in holders if h.is_connected() and h.is_idle()]
        in_use = sum(1 for h in holders if h.is_connected() and not h.is_idle())
        spare = len(idle) - max(0, users - in_use)
        for holder in idle[: max(0, spare)]:
            holder.terminate()
        return max(0, spare)

    def is_auth_failure(self, exc: BaseException) -> bool:
        return isinstance(exc, AUTH_ERRORS)

    def describe(self, resource: _Pool) -> dict[str, object]:
        return {"identity": resource.identity}

    @contextlib.contextmanager
    def _translated(self, identity: str, version_id: str) -> Iterator[None]:
        try:
            yield
        except AUTH_ERRORS as exc:
            raise DatabaseAuthError(
                f"database refused the credentials of secret {self.secret_name} "
                f"version {version_id} for {identity} (sqlstate {getattr(exc, 'sqlstate', '?')})",
                hint=(
                    f"check the username and password in secret {self.secret_name}, that the "
                    "role exists with LOGIN, and pg_hba.conf"
                ),
            ) from exc
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(
                f"database unreachable for {identity} from secret {self.secret_name} "
                f"({type(exc).__name__})",
                hint="check host and port in the secret, security groups and that it is running",
            ) from exc
        except asyncpg.PostgresError as exc:
            raise DatabaseUnavailableError(
                f"database error for {identity} from secret {self.secret_name} "
                f"(sqlstate {exc.sqlstate})",
                hint="check the database name in the secret and the role's CONNECT privilege",
            ) from exc


class PoolManager(SwapOwner[PostgresCredentials, _Pool]):
    """Owns the current asyncpg pool for one credentials secret (`ConnectionSource`)."""

    def __init__(
        self,
        secret_name: str,
        *,
        tasks: asyncio.TaskGroup,
        refresher: Refresher | None = None,
        min_size: int = 2,
        max_size: int = 10,
        connect_timeout_s: float = 5.0,
        acquire_timeout_s: float = 30.0,
        drain_timeout_s: float = 30.0,
        init: InitConnection | None = None,
        metrics: MetricsRegistry | None = None,
        observers: tuple[Observer, ...] = (),
        statement_timeout_s: float | None = None,
        socket_options: SocketOptions | None = None,
        host_override: str | None = None,
    ) -> None:
        """`refresher`: records the version in service and recovers auth failures (None:
        neither); `statement_timeout_s`: the server-side backstop of every statement (None:
        none); `socket_options`: keepalives and `TCP_USER_TIMEOUT` (None: the kernel's)."""
        self._acquire_timeout_s = acquire_timeout_s
        registry = metrics or MetricsRegistry()
        self._release_failures = registry.counter("PoolReleaseFailures")
        adapter = _PoolAdapter(
            secret_name,
            min_size,
            max_size,
            connect_timeout_s,
            init,
            statement_timeout_s=statement_timeout_s,
            socket_options=socket_options,
            host_override=host_override,
        )
        counted = SwapMetrics(registry, swaps="PoolRotations", drain_timeouts="PoolDrainTimeouts")
        swap: HotSwap[PostgresCredentials, _Pool] = HotSwap(
            adapter,
            secret_name,
            tasks=tasks,
            kind="db.pool",
            drain_timeout_s=drain_timeout_s,
            recover=None if refresher is None else refresher.recover,
            metrics=registry,
            observers=(counted, *observers),
        )
        self._adapter = adapter
        super().__init__(swap, refresher)

    async def apply(self, loaded: LoadedSecret[PostgresCredentials]) -> bool:
        """Put a new version into service, then shed the old pool's idle connections.

        This runs in the same loop step as the swap (no await yields between the core's
        `swapped` event and it), so whoever awaits that event sees the old pool already
        shrunk. Each later release into the old pool sheds again (`_release`).
        """
        old = self._swap.current
        swapped = await super().apply(loaded)
        new = self._swap.current
        if swapped and new is not old:
            closed = self._adapter.shed(old.resource, old.users)
            self._adapter.in_service(new.resource)
            log.info(
                "db.pool_shed",
                secret=self.secret_name,
                version_id=old.version_id,
                idle_closed=closed,
                still_open=old.resource.pool.get_size(),
            )
        return swapped

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        """A connection from the current pool; an auth refusal recovers and retries once
        (the core's `leased`)."""
        acquired = False
        try:
            async with self._swap.leased(self._acquire_from) as (generation, conn):
                acquired = True
                try:
                    yield conn
                finally:
                    await self._release(generation, conn)
        except AuthFailed as exc:
            if acquired:  # the caller's own work raised it: not this acquire's refusal
                raise
            raise self._auth_error(exc) from exc.__cause__

    async def _acquire_from(self, resource: _Pool) -> Connection:
        """One connection of `resource`'s pool; refusals pass through for `leased`."""
        try:
            return await resource.pool.acquire(timeout=capped(self._acquire_timeout_s))
        except AUTH_ERRORS:
            raise
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(
                f"database unreachable for {resource.identity} ({type(exc).__name__})",
                hint="check the database host, port, security groups and max_connections",
            ) from exc

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        async with self.acquire() as conn:
            return await conn.execute(query, *args)

    async def renew_connections(self) -> None:
        """Replace every open connection of the current pool as it is next acquired (or,
        in use, released): asyncpg's `expire_connections`. After the boot's migrations, so
        that no connection opened before they created the `vector` type serves without
        the pool's `init` (its codec: `kb_mcp.db.vectors`) having seen it."""
        await self._swap.current.resource.pool.expire_connections()

    async def probe(self, timeout_s: float = 2.0) -> None:
        """`SELECT 1` through the pool (readiness); raises on failure."""
        async with asyncio.timeout(timeout_s):
            await self.fetchval("SELECT 1")

    async def _release(self, generation: Generation[_Pool], conn: Connection) -> None:
        """Give `conn` back; a failure is the pool's problem, not the caller's.

        Past the request's deadline the release (which waits for the cancel of a running
        statement) is bounded by what is left before the answer is due (the deadline's
        reserve, `CANCEL_GRACE_S`); asyncpg terminates the connection past it.
        """
        scope = current()
        timeout = None if scope is None else max(scope.answer_remaining(), _RELEASE_FLOOR_S)
        try:
            await generation.resource.pool.release(conn, timeout=timeout)
        except Exception as exc:  # the caller's work is done: count, log, discard
            self._release_failures.value += 1
            log.warning(
                "db.release_failed",
                secret=self.secret_name,
                version_id=generation.version_id,
                error=type(exc).__name__,
            )
            with contextlib.suppress(Exception):  # discarding a broken connection
                conn.terminate()
        if self._out_of_service(generation):
            # Released into a pool out of service: close it unless a queued caller needs
            # it (this caller still counts as a user until its lease ends: minus one).
            self._adapter.shed(generation.resource, generation.users - 1)

    def _out_of_service(self, generation: Generation[_Pool]) -> bool:
        try:
            return self._swap.current is not generation
        except ResourceClosedError:  # shutting down: the core's drain closes everything
            return False

    def _auth_error(self, failed: AuthFailed) -> DatabaseAuthError:
        generation: Generation[_Pool] = failed.generation
        return DatabaseAuthError(
            f"database refused the credentials of secret {self.secret_name} version "
            f"{generation.version_id} for {generation.resource.identity} and no working newer "
            f"version was found ({type(failed.__cause__).__name__})",
            hint=f"rotate or fix secret {self.secret_name}; see secrets/RUNBOOK.md",
        )
