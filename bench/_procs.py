"""Child processes for the benchmarks: free ports, readiness by polling, clean stops.

A server is started on a port picked free on 127.0.0.1 (a server started with port 0
reports its port only in a log line, which nothing here reads) and is ready when GET on
its readiness path answers 200. Its output goes to a temporary file, shown when it fails
to become ready; it is stopped with SIGTERM (then killed after 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["ROOT", "Server", "free_port", "http_status", "python_argv", "spawn"]

READY_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port the OS reports free on 127.0.0.1 (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def http_status(port: int, path: str) -> int:
    """The status of GET `path` on 127.0.0.1:`port`; 0 when it cannot connect."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        parts = (await reader.readline()).split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    except OSError:
        return 0
    finally:
        writer.close()


@dataclass
class Server:
    """A child process serving HTTP on `port`; its stderr goes to a temporary file."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def spawn(
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int,
    ready_path: str,
    *,
    cwd: Path = ROOT,
) -> AsyncIterator[Server]:
    """Start `argv` in `cwd`, poll `ready_path` until 200, stop it with SIGTERM at the end."""
    with tempfile.NamedTemporaryFile(prefix=f"bench-mcp-{name}-", suffix=".log") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
        )
        server = Server(name, process, port, log)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while await http_status(port, ready_path) != 200:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} never became ready:\n{server.tail()}")
                await asyncio.sleep(0.02)
            yield server
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def python_argv(prologue: str, entry: str, *args: str) -> list[str]:
    """`python -c` running `entry` (module:function) after `prologue`, with `args`."""
    module, function = entry.split(":")
    code = f"{prologue}import sys; from {module} import {function}; sys.exit({function}())"
    return [sys.executable, "-c", code, *args]
