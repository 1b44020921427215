"""A real `kb-mcp serve` loads only its own transport's code, and boots with the collector off."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from typing import Any

import pytest

from tests.support.runtime_env import RuntimeEnv

# `kb-mcp serve` as `python -m kb_mcp` runs it; the started line it writes on --ready-fd
# also names the modules loaded by then and the collector's state.
_SERVE = """
import gc, sys
import kb_mcp.runtime.handshake as handshake
_write = handshake.write_ready_line
def _with_modules(fd, document):
    loaded = sorted(m for m in sys.modules if m.startswith(("kb_mcp", "uvicorn")))
    _write(fd, {**document, "modules": loaded, "collector_on": gc.isenabled()})
handshake.write_ready_line = _with_modules
from kb_mcp.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _serve_until_started(env: RuntimeEnv, transport: str) -> dict[str, Any]:
    """Run serve over `transport`, read its started line, stop it; the line."""
    ready_r, ready_w = os.pipe()
    argv = ("serve", "--transport", transport, "--port", "0", "--ready-fd", str(ready_w))
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE, *argv],
            env=env.process_env(),
            stdin=subprocess.PIPE,  # open: the stdio transport serves until told to stop
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(ready_w,),
        )
    finally:
        os.close(ready_w)
    try:
        readable, _, _ = select.select([ready_r], [], [], 120)
        assert readable, "no started line within 120 s"
        with os.fdopen(ready_r, "rb") as pipe:
            line = pipe.readline()
        assert line, f"serve exited ({process.poll()}) before it started"
        document: dict[str, Any] = json.loads(line)
    finally:
        process.terminate()
        process.communicate(timeout=60)
    assert process.returncode == 0
    return document


@pytest.mark.parametrize(
    ("transport", "loaded", "not_loaded"),
    [
        ("http", "kb_mcp.runtime.http_transport", "kb_mcp.server.stdio"),
        ("stdio", "kb_mcp.server.stdio", "uvicorn.protocols"),
    ],
)
def test_serve_loads_only_its_transport(
    env: RuntimeEnv, transport: str, loaded: str, not_loaded: str
) -> None:
    """Over http the stdio adapter is never imported; over stdio uvicorn's HTTP protocols
    are not (the `uvicorn` package itself comes with the MCP SDK)."""
    started = _serve_until_started(env, transport)
    assert started["transport"] == transport
    assert loaded in started["modules"]
    assert not any(m == not_loaded or m.startswith(not_loaded + ".") for m in started["modules"])
    # Until serving, the collector is off (kb_mcp.runtime.collector); resumed just after.
    assert started["collector_on"] is False
