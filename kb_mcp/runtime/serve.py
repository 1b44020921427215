"""`kb-mcp serve`: boot the runtime, serve MCP over stdio or streamable HTTP, stop cleanly.

Signals: SIGTERM/SIGINT stop accepting work, let in-flight requests finish within the
drain timeout, then close pools and clients in reverse order and exit 0. SIGHUP refreshes
every secret now. A failure before serving exits 1 with a structured `startup.failed`
event and a short human line on stderr.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from kb_mcp.config import Settings, load_settings
from kb_mcp.errors import (
    EXIT_OK,
    EXIT_STARTUP_FAILURE,
    EXIT_USAGE,
    KbMcpError,
    report_startup_failure,
)
from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.metrics import EmfEmitter
from kb_mcp.runtime.handshake import write_ready_line
from kb_mcp.runtime.supervisor import Runtime, boot_runtime

if TYPE_CHECKING:
    from kb_mcp.db.pool import PoolManager

__all__ = ["OnStarted", "ServerStarted", "boot_migrations", "run_serve", "serve"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ServerStarted:
    """The handshake `serve` gives its caller once it accepts connections and is ready.

    For http, `port` is the bound port (useful with port 0) and `url` the MCP endpoint;
    for stdio both are empty. The runtime behind it is booted: `/readyz` answers 200.
    """

    transport: str
    host: str
    port: int
    url: str
    runtime: Runtime


OnStarted = Callable[[ServerStarted], None]


def boot_migrations(dimensions: int) -> Callable[[PoolManager], Awaitable[None]]:
    """The boot's `on_pool_ready`: apply pending migrations, then, when any was applied,
    renew the pool's connections (those opened before a migration created the `vector`
    type lack its codec: `kb_mcp.db.vectors`)."""

    async def migrate(pool: PoolManager) -> None:
        from kb_mcp.db.migrate import apply_migrations

        if await apply_migrations(pool, dimensions=dimensions):
            await pool.renew_connections()

    return migrate


def run_serve(
    *,
    transport: str,
    host: str,
    port: int,
    allow_unauthenticated: bool = False,
    ready_fd: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Load settings, configure logging, and run `serve` to completion; the exit code.

    `ready_fd`: a file descriptor that gets one JSON line once serving (`handshake.py`).
    `on_ready`: called once serving, after that line (the command line resumes the
    garbage collector with it, `collector.py`).
    """
    try:
        settings = load_settings()
    except KbMcpError as exc:
        configure_logging(json_lines=True)
        log.error("startup.failed", error=type(exc).__name__, detail=str(exc), hint=exc.hint)
        report_startup_failure(exc)
        return EXIT_STARTUP_FAILURE
    configure_logging(json_lines=settings.json_logs, level=settings.log_level)
    from kb_mcp.runtime.eventloop import event_loop_factory

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        code = runner.run(
            serve(
                settings,
                transport=transport,
                host=host,
                port=port,
                allow_unauthenticated=allow_unauthenticated,
                on_started=_on_started(ready_fd, on_ready),
            )
        )
    # Everything is closed. Freezing what is left spares the interpreter's final garbage
    # collection (measured at 1-3 s of exit delay after SIGTERM), which ECS would wait for.
    gc.freeze()
    return code


async def serve(
    settings: Settings,
    *,
    transport: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_unauthenticated: bool = False,
    on_started: OnStarted | None = None,
) -> int:
    """Boot, serve until a stop signal, shut down in order. Returns the exit code.

    `on_started` is called once, when the server accepts connections and is ready (for
    http: the bound port). It is the handshake for callers that run `serve` in process.
    """
    from kb_mcp.db.vectors import init_connection
    from kb_mcp.server.http import check_bind_policy

    if transport == "http":
        refusal = check_bind_policy(
            host,
            has_token=bool(settings.auth_token_secret_name),
            allow_unauthenticated=allow_unauthenticated,
        )
        if refusal is not None:
            sys.stderr.write(f"kb-mcp: {refusal}\n")
            return EXIT_USAGE

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop(signame: str) -> None:
        log.info("server.stop_requested", signal=signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, sig.name)
    # Until the refresher exists there is nothing to refresh (boot reads every secret).
    loop.add_signal_handler(signal.SIGHUP, log.info, "server.refresh_ignored_while_booting")

    booted = False
    try:
        async with boot_runtime(
            settings,
            pool_init=init_connection,
            on_pool_ready=boot_migrations(settings.embedding_dimensions),
            stop=stop,
        ) as runtime:
            booted = True
            loop.add_signal_handler(signal.SIGHUP, runtime.refresher.trigger)
            if stop.is_set():
                return EXIT_OK
            await _run_transport(
                runtime, transport=transport, host=host, port=port, on_started=on_started
            )
    except KbMcpError as exc:
        if booted:
            raise
        log.error(
            "startup.failed",
            error=type(exc).__name__,
            secret=getattr(exc, "secret_name", None),
            aws_error=getattr(exc, "aws_error", None),
            detail=str(exc),
            hint=exc.hint,
        )
        report_startup_failure(exc)
        return EXIT_STARTUP_FAILURE
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    log.info("server.stopped")
    return EXIT_OK


async def _run_transport(
    runtime: Runtime, *, transport: str, host: str, port: int, on_started: OnStarted | None
) -> None:
    """Serve until `runtime.stop` is set (or the transport ends, which sets it)."""
    from kb_mcp.runtime.app import build_app

    settings = runtime.settings
    stop = runtime.stop
    built = build_app(runtime, host=host)
    emitter = EmfEmitter(runtime.metrics, environment=settings.env.value, sink=_stderr_line)

    def started(bound_port: int) -> None:
        url = f"http://{host}:{bound_port}/mcp" if transport == "http" else ""
        log.info(
            "server.listening",
            transport=transport,
            host=host,
            port=bound_port,
            url=url,
            booted_in_s=round(runtime.booted_in_s, 3),
        )
        if on_started is not None:
            on_started(ServerStarted(transport, host, bound_port, url, runtime))

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(runtime.refresher.run(stop))
        if settings.json_logs:  # EMF lines are for CloudWatch, never the development console
            tasks.create_task(emitter.run(stop, settings.metrics_flush_interval_s))
        if transport == "stdio":
            from kb_mcp.server.stdio import run_stdio

            # run_stdio answers malformed lines with a JSON-RPC parse error.
            stdio = tasks.create_task(_stopping_when_done(run_stdio(built.mcp), stop))
            started(0)
            await stop.wait()
            stdio.cancel()
        else:
            from kb_mcp.runtime.http_transport import bind_socket, http_server

            sock = bind_socket(host, port)
            bound_port = sock.getsockname()[1]
            server = http_server(
                built.http,
                drain_timeout_s=settings.drain_timeout_s,
                on_listening=lambda: started(bound_port),
            )
            tasks.create_task(_stopping_when_done(server.serve(sockets=[sock]), stop))
            await stop.wait()
            server.should_exit = True


async def _stopping_when_done(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run `work`; whichever way it ends, the runtime stops (one stop path)."""
    try:
        await work
    finally:
        stop.set()


def _on_started(fd: int | None, on_ready: Callable[[], None] | None) -> OnStarted | None:
    """The handshake line on `fd` (when given), then `on_ready` (when given)."""
    if fd is None and on_ready is None:
        return None

    def on_started(started: ServerStarted) -> None:
        if fd is not None:
            document = {
                "transport": started.transport,
                "host": started.host,
                "port": started.port,
                "url": started.url,
                "booted_in_s": round(started.runtime.booted_in_s, 3),
            }
            write_ready_line(fd, document)
        if on_ready is not None:
            on_ready()

    return on_started


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
