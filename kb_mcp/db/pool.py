"""`PoolManager`: an asyncpg pool whose credentials can rotate without failing a request.

Swap protocol (measured to give zero failures; a plain swap + `close()` does not):

1. validate the new credentials with one `asyncpg.connect` + `SELECT 1`
   (never `expire_connections()` with unproven credentials: it empties the pool);
2. build the new pool and probe it;
3. swap the reference, so new callers use the new pool;
4. wait until every caller that acquired from, or is queued on, the old pool has
   released it (counted per pool), bounded by the drain timeout;
5. close the old pool; terminate it after the timeout (logged and counted).

A new connection refused with SQLSTATE 28P01/28000 forces one single-flight refresh of
the credentials secret. A new version is rotated in and the operation retried once;
with no new version, the `AWSPENDING` version is tried (single-user rotation window)
before giving up with `DatabaseAuthError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import asyncpg
import structlog

from kb_mcp.errors import (
    DatabaseAuthError,
    DatabaseUnavailableError,
    ResourceClosedError,
    RotationError,
    SecretNotFoundError,
    SecretsError,
)
from kb_mcp.observability.counters import MetricsRegistry
from kb_mcp.runtime.occupancy import Occupancy
from kb_mcp.secrets.port import AWSPENDING, SecretsProvider, SecretVersion
from kb_mcp.secrets.schemas import PostgresCredentials, parse_secret

__all__ = ["AUTH_ERRORS", "PoolManager"]

log = structlog.get_logger(__name__)

AUTH_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[Any]"
InitConnection: TypeAlias = "Callable[[asyncpg.Connection[Any]], Awaitable[None]]"


@dataclass(eq=False)
class _Slot:
    """One generation of the pool: the pool, the secret version behind it, its users."""

    pool: asyncpg.Pool[Any]
    version_id: str
    identity: str
    occupancy: Occupancy = field(default_factory=Occupancy)

    @property
    def users(self) -> int:
        return self.occupancy.users

    def enter(self) -> None:
        self.occupancy.enter()

    def leave(self) -> None:
        self.occupancy.leave()


class PoolManager:
    """Owns the current asyncpg pool for one credentials secret and rotates it in place."""

    def __init__(
        self,
        provider: SecretsProvider,
        secret_name: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        connect_timeout_s: float = 5.0,
        acquire_timeout_s: float = 30.0,
        drain_timeout_s: float = 30.0,
        init: InitConnection | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self._provider = provider
        self.secret_name = secret_name
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout_s = connect_timeout_s
        self._acquire_timeout_s = acquire_timeout_s
        self._drain_timeout_s = drain_timeout_s
        self._init = init
        self._metrics = metrics or MetricsRegistry()
        self._current: _Slot | None = None
        self._rotate_lock = asyncio.Lock()
        self._auth_lock = asyncio.Lock()
        self._failed_recovery: tuple[str, float] | None = None
        self._drains: set[asyncio.Task[None]] = set()
        self._closed = False
        self._rotations = self._metrics.counter("PoolRotations")
        self._drain_timeouts = self._metrics.counter("PoolDrainTimeouts")
        self._auth_recoveries = self._metrics.counter("DatabaseAuthRecoveries")

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Build the first pool from the current secret and probe it (boot path)."""
        loaded = await self._provider.get_secret_json(self.secret_name, PostgresCredentials)
        slot = await self._build(loaded.value, loaded.version_id)
        self._current = slot
        log.info(
            "db.pool_ready",
            secret=self.secret_name,
            version_id=slot.version_id,
            identity=slot.identity,
            min_size=self._min_size,
            max_size=self._max_size,
        )

    async def __aenter__(self) -> PoolManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the current pool after its users finish (bounded), and any draining ones."""
        if self._closed:
            return
        self._closed = True
        async with self._rotate_lock:
            slot, self._current = self._current, None
            if slot is not None:
                await self._drain_and_close(slot, reason="shutdown")
        if self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)

    @property
    def version_id(self) -> str | None:
        """The secret version the current pool was built from."""
        return None if self._current is None else self._current.version_id

    @property
    def draining(self) -> int:
        """How many old pools are still draining."""
        return len(self._drains)

    # -- use -------------------------------------------------------------------------

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        """A connection from the current pool; auth failures refresh and retry once."""
        for attempt in (1, 2):
            slot = self._require_slot()
            slot.enter()
            try:
                try:
                    conn = await slot.pool.acquire(timeout=self._acquire_timeout_s)
                except AUTH_ERRORS as exc:
                    if attempt == 2:
                        raise self._auth_error(slot, exc) from exc
                    await self._recover_auth(slot, exc)
                    continue
                except UNAVAILABLE_ERRORS as exc:
                    raise DatabaseUnavailableError(
                        f"database unreachable for {slot.identity} ({type(exc).__name__})",
                        hint="check the database host, port, security groups and max_connections",
                    ) from exc
                try:
                    yield conn
                finally:
                    await self._release(slot, conn)
                return
            finally:
                slot.leave()

    async def _release(self, slot: _Slot, conn: Connection) -> None:
        """Give `conn` back; a failing release never changes the block's outcome.

        The caller sees what its block did (its result, or its own exception), never the
        release's error: after a COMMIT the write is stored whatever the release does.
        asyncpg has already terminated a connection whose reset failed (the pool opens a
        new one), so the error is only logged. Cancellation still propagates.
        """
        try:
            await slot.pool.release(conn)
        except Exception as exc:  # logged; the connection is already terminated by asyncpg
            log.warning("db.release_failed", identity=slot.identity, error=type(exc).__name__)

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

    async def probe(self, timeout_s: float = 2.0) -> None:
        """`SELECT 1` through the pool (readiness); raises on failure."""
        async with asyncio.timeout(timeout_s):
            await self.fetchval("SELECT 1")

    # -- rotation --------------------------------------------------------------------

    async def apply(self, version: SecretVersion) -> bool:
        """Put a new version of the credentials secret into service (refresher entry point).

        Returns False when it is already in service. Raises `RotationError` (the old pool
        keeps serving) when the version is malformed or its credentials do not work.
        """
        try:
            credentials = parse_secret(
                PostgresCredentials, version.value.get_secret_value(), secret_name=version.name
            )
        except SecretsError as exc:
            raise RotationError(
                str(exc), secret_name=version.name, version_id=version.version_id, hint=exc.hint
            ) from exc
        return await self.rotate(credentials, version.version_id)

    async def rotate(self, credentials: PostgresCredentials, version_id: str) -> bool:
        """Validate, build, swap, then drain the old pool in the background."""
        async with self._rotate_lock:
            old = self._require_slot()
            if old.version_id == version_id:
                return False
            try:
                new = await self._build(credentials, version_id)
            except (DatabaseAuthError, DatabaseUnavailableError) as exc:
                raise RotationError(
                    f"new credentials of secret {self.secret_name} version {version_id} "
                    f"rejected: {exc}",
                    secret_name=self.secret_name,
                    version_id=version_id,
                    hint=exc.hint,
                ) from exc
            if self._closed:
                new.pool.terminate()
                raise ResourceClosedError("pool manager closed during rotation")
            self._current = new
            self._rotations.value += 1
            log.info(
                "db.pool_swapped",
                secret=self.secret_name,
                old_version_id=old.version_id,
                new_version_id=version_id,
                identity=new.identity,
                old_pool_users=old.users,
            )
            task = asyncio.create_task(self._drain_and_close(old, reason="rotation"))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
            return True

    # -- internals -------------------------------------------------------------------

    def _require_slot(self) -> _Slot:
        slot = self._current
        if slot is None:
            raise ResourceClosedError("database pool is not open")
        return slot

    async def _build(self, credentials: PostgresCredentials, version_id: str) -> _Slot:
        kwargs = credentials.connect_kwargs()
        identity = credentials.identity()
        try:
            conn = await asyncpg.connect(**kwargs, timeout=self._connect_timeout_s)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
            pool = await asyncpg.create_pool(
                **kwargs,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout_s,
                init=self._init,  # type: ignore[arg-type]  # stubs want a Protocol; same signature
            )
            try:
                async with pool.acquire() as probe:
                    await probe.fetchval("SELECT 1")
            except BaseException:
                pool.terminate()
                raise
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
        slot = _Slot(pool=pool, version_id=version_id, identity=identity)
        return slot

    async def _drain_and_close(self, slot: _Slot, *, reason: str) -> None:
        started = time.monotonic()
        if not await slot.occupancy.wait_idle(self._drain_timeout_s):
            self._drain_timeouts.value += 1
            log.warning(
                "db.pool_drain_timeout",
                secret=self.secret_name,
                version_id=slot.version_id,
                users=slot.users,
                drain_timeout_s=self._drain_timeout_s,
                reason=reason,
            )
            slot.pool.terminate()
            return
        try:
            await asyncio.wait_for(slot.pool.close(), self._drain_timeout_s)
        except TimeoutError:
            self._drain_timeouts.value += 1
            slot.pool.terminate()
        log.info(
            "db.pool_closed",
            secret=self.secret_name,
            version_id=slot.version_id,
            reason=reason,
            drained_in_s=round(time.monotonic() - started, 3),
        )

    def _auth_error(self, slot: _Slot, exc: BaseException) -> DatabaseAuthError:
        return DatabaseAuthError(
            f"database refused the credentials of secret {self.secret_name} version "
            f"{slot.version_id} for {slot.identity} and no working newer version was found "
            f"({type(exc).__name__})",
            hint=f"rotate or fix secret {self.secret_name}; see secrets/RUNBOOK.md",
        )

    async def _recover_auth(self, slot: _Slot, exc: BaseException) -> None:
        """Single-flight: refresh the secret, else try AWSPENDING; raise when nothing works."""
        async with self._auth_lock:
            if self._current is not slot:
                return  # someone else already rotated while we waited
            failed = self._failed_recovery
            if (
                failed is not None
                and failed[0] == slot.version_id
                and time.monotonic() - failed[1] < 1.0
            ):
                raise self._auth_error(slot, exc) from exc
            self._auth_recoveries.value += 1
            log.warning(
                "db.auth_failed",
                secret=self.secret_name,
                version_id=slot.version_id,
                identity=slot.identity,
                error=type(exc).__name__,
            )
            for candidate in await self._candidates(slot):
                try:
                    await self.apply(candidate)
                except RotationError as rotation_error:
                    log.warning(
                        "db.auth_candidate_rejected",
                        secret=self.secret_name,
                        version_id=candidate.version_id,
                        error=str(rotation_error),
                    )
                    continue
                log.info(
                    "db.auth_recovered",
                    secret=self.secret_name,
                    old_version_id=slot.version_id,
                    new_version_id=candidate.version_id,
                    stage=candidate.stages[0] if candidate.stages else "",
                )
                return
            self._failed_recovery = (slot.version_id, time.monotonic())
            raise self._auth_error(slot, exc) from exc

    async def _candidates(self, slot: _Slot) -> list[SecretVersion]:
        candidates: list[SecretVersion] = []
        try:
            current = await self._provider.refresh(self.secret_name, seen_version=slot.version_id)
        except SecretsError as error:
            log.warning("db.auth_refresh_failed", secret=self.secret_name, error=str(error))
        else:
            if current.version_id != slot.version_id:
                candidates.append(current)
        try:
            pending = await self._provider.get_secret_stage(self.secret_name, AWSPENDING)
        except SecretNotFoundError:
            pass
        except SecretsError as error:
            log.warning("db.auth_pending_failed", secret=self.secret_name, error=str(error))
        else:
            if pending.version_id not in {slot.version_id, *(c.version_id for c in candidates)}:
                candidates.append(pending)
        return candidates
