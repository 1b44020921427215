"""`kb-mcp serve`: boot the runtime, serve MCP over stdio or streamable HTTP, stop cleanly.

Signals: SIGTERM/SIGINT stop accepting work, let in-flight requests finish within the
drain timeout, then close pools and clients in reverse order and exit 0. SIGHUP refreshes
every secret now. A failure before serving exits 1 with a structured `startup.failed`
event and a short human line on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn

from kb_mcp.config import Settings, load_settings
from kb_mcp.errors import EXIT_OK, EXIT_STARTUP_FAILURE, EXIT_USAGE, KbMcpError
from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.metrics import EmfEmitter
from kb_mcp.runtime.supervisor import Runtime, boot_runtime

__all__ = ["run_serve", "serve"]

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: the supervisor owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run_serve(*, transport: str, host: str, port: int, allow_unauthenticated: bool = False) -> int:
    """Load settings, configure logging, and run `serve` to completion; the exit code."""
    try:
        settings = load_settings()
    except KbMcpError as exc:
        configure_logging(json_lines=True)
        log.error("startup.failed", error=type(exc).__name__, detail=str(exc), hint=exc.hint)
        from kb_mcp.cli import report_startup_failure

        report_startup_failure(exc)
        return EXIT_STARTUP_FAILURE
    configure_logging(json_lines=settings.json_logs, level=settings.log_level)
    code = asyncio.run(
        serve(
            settings,
            transport=transport,
            host=host,
            port=port,
            allow_unauthenticated=allow_unauthenticated,
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
) -> int:
    """Boot, serve until a stop signal, shut down in order. Returns the exit code."""
    from kb_mcp.cli import report_startup_failure
    from kb_mcp.db.migrate import apply_migrations
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
    runtime_ref: list[Runtime] = []

    def on_stop(signame: str) -> None:
        log.info("server.stop_requested", signal=signame)
        if runtime_ref:
            runtime_ref[0].stopping = True
        stop.set()

    def on_hup() -> None:
        if runtime_ref:
            runtime_ref[0].refresher.trigger()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, sig.name)
    loop.add_signal_handler(signal.SIGHUP, on_hup)

    async def migrate(pool: Any) -> None:
        await apply_migrations(pool, dimensions=settings.embedding_dimensions)

    try:
        async with boot_runtime(
            settings, pool_init=init_connection, on_pool_ready=migrate
        ) as runtime:
            runtime_ref.append(runtime)
            if stop.is_set():
                return EXIT_OK
            await _run_transport(runtime, stop, transport=transport, host=host, port=port)
    except KbMcpError as exc:
        if runtime_ref:
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
    runtime: Runtime, stop: asyncio.Event, *, transport: str, host: str, port: int
) -> None:
    from kb_mcp.server.app import build_app

    settings = runtime.settings
    built = build_app(runtime, host=host)
    emitter = EmfEmitter(runtime.metrics, environment=settings.env.value, sink=_stderr_line)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(runtime.refresher.run(stop))
        if settings.json_logs:  # EMF lines are for CloudWatch, never the development console
            tasks.create_task(emitter.run(stop, settings.metrics_flush_interval_s))
        if transport == "stdio":
            stdio = tasks.create_task(built.mcp.run_stdio_async())
            await _first(stop, stdio)
            stop.set()
            if not stdio.done():
                stdio.cancel()
        else:
            # IPPROTO_TCP explicitly: with protocol 0 asyncio does not set TCP_NODELAY on
            # accepted connections, and keep-alive responses wait ~40 ms for a delayed ACK.
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            bound_port = sock.getsockname()[1]
            config = uvicorn.Config(
                built.http,
                log_config=None,
                lifespan="on",
                timeout_graceful_shutdown=int(settings.drain_timeout_s),
                access_log=False,
            )
            server = _Server(config)
            http = tasks.create_task(server.serve(sockets=[sock]))
            log.info(
                "server.listening",
                transport="http",
                host=host,
                port=bound_port,
                url=f"http://{host}:{bound_port}/mcp",
                booted_in_s=round(runtime.booted_in_s, 3),
            )
            await _first(stop, http)
            stop.set()
            runtime.stopping = True
            server.should_exit = True


async def _first(stop: asyncio.Event, task: asyncio.Task[Any]) -> None:
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
