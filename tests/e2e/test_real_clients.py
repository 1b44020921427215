"""Official clients against `kb-mcp dev`: the TypeScript SDK over HTTP and over the stdio
snippet the banner prints, through every tool and resource; both SDKs on a mistyped and an
unknown argument (a clean tool error, the session still usable).

The TypeScript part runs when node and tests/e2e/ts/node_modules are there (`npm ci` in
tests/e2e/ts; `.ci/run` does it when npm is installed) and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb_mcp.ops.drill.load import mcp_client
from tests.support.mcp_calls import call_ok, call_refused
from tests.support.processes import KbMcpProcess, base_env

TS = Path(__file__).resolve().parent / "ts"
_NO_NODE = (
    "node is not installed"
    if shutil.which("node") is None
    else "run npm ci in tests/e2e/ts"
    if not (TS / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir()
    else None
)
_VALIDATOR_TEXT = ("pydantic", "validation error", "input_value", "type=")


@pytest.fixture(scope="module")
def dev_stack() -> Iterator[tuple[dict[str, Any], str]]:
    """A `kb-mcp dev` on free ports: its stack.json and everything it printed (the banner)."""
    base = Path(tempfile.mkdtemp(prefix="kbclients-"))
    os.chmod(base, 0o711)  # noqa: S103 - as root, the postgres user must traverse it
    dev = KbMcpProcess(
        ("dev", "--port", "0", "--data-dir", str(base / "stack")), base_env(), handshake=True
    ).start()
    try:
        dev.wait_ready(180.0)
        stack = json.loads((base / "stack" / "stack.json").read_text())
        # The banner was written before the handshake; wait until the reader has all of it.
        yield stack, dev.wait_for_text("Stop: Ctrl-C")
    finally:
        dev.signal(signal.SIGTERM)
        dev.wait(60.0)
        shutil.rmtree(base, ignore_errors=True)


def _stdio_snippet(banner: str) -> dict[str, Any]:
    """The `mcpServers` entry the banner prints for stdio clients."""
    start = banner.index("{", banner.index("Or over stdio"))
    snippet, _ = json.JSONDecoder().raw_decode(banner[start:])
    entry: dict[str, Any] = snippet["mcpServers"]["kb-mcp"]
    return entry


def _drive(mode: str, target: str) -> dict[str, Any]:
    done = subprocess.run(
        ["node", "drive.mjs", mode, target],
        cwd=TS,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


_TOOLS = (
    "kb_add",
    "kb_search",
    "kb_get",
    "kb_list",
    "kb_update",
    "kb_delete",
    "kb_add_many",
    "kb_namespaces",
    "kb_delete_namespace",
)
"""Every tool the server lists; the TypeScript client calls each."""


def _check_run(run: dict[str, Any]) -> None:
    steps = run["steps"]
    assert run["tools"] == sorted(_TOOLS)
    for tool in _TOOLS:
        assert steps[tool].get("error") is False, (tool, steps[tool])
    added = steps["kb_add"]["data"]["id"]
    assert [hit["id"] for hit in steps["kb_search"]["data"]["hits"]][:1] == [added]
    assert steps["kb_update"]["data"]["changed"] == ["tags"]
    assert steps["resource_read"]["text"].startswith("# TypeScript client")
    assert run["resources"] >= 1
    limit = "limit must be an integer from 1 to 50, got a string"
    assert steps["mistyped"] == {"error": True, "text": steps["mistyped"]["text"], "data": None}
    assert limit in steps["mistyped"]["text"]
    assert limit in steps["mistyped_word"]["text"]
    assert "unknown argument 'bogus_arg'" in steps["unknown"]["text"]
    for case in ("mistyped", "mistyped_word", "unknown"):
        assert not any(word in steps[case]["text"] for word in _VALIDATOR_TEXT)
    assert steps["after_errors"]["error"] is False
    assert steps["kb_delete"]["data"] == {"deleted": True}
    assert steps["kb_add_many"]["data"]["stored"] == 2
    spaces = {n["namespace"]: n["documents"] for n in steps["kb_namespaces"]["data"]["namespaces"]}
    assert spaces[run["space"]] == 2
    assert steps["kb_delete_namespace"]["data"]["deleted"] == 2


@pytest.mark.skipif(_NO_NODE is not None, reason=str(_NO_NODE))
def test_the_typescript_client_over_http(dev_stack: tuple[dict[str, Any], str]) -> None:
    """Every tool and resource through the TypeScript SDK over HTTP; bad input refused."""
    _check_run(_drive("http", dev_stack[0]["mcp_url"]))


@pytest.mark.skipif(_NO_NODE is not None, reason=str(_NO_NODE))
def test_the_typescript_client_over_the_banners_stdio_snippet(
    dev_stack: tuple[dict[str, Any], str],
) -> None:
    """The stdio snippet kb-mcp dev prints, as a desktop client would start it: every tool works."""
    entry = _stdio_snippet(dev_stack[1])
    assert entry["command"].endswith("kb-mcp")
    assert entry["args"] == ["serve", "--transport", "stdio"]
    _check_run(_drive("stdio", json.dumps(entry)))


async def test_the_python_client_on_mistyped_and_unknown_arguments(
    dev_stack: tuple[dict[str, Any], str],
) -> None:
    """The official Python client over HTTP: clean tool errors, then the same session works."""
    async with mcp_client(dev_stack[0]["mcp_url"], None) as client:
        for limit in ("5", "five"):
            text = await call_refused(client, "kb_search", {"query": "q", "limit": limit})
            assert "limit must be an integer from 1 to 50, got a string" in text
            assert not any(word in text for word in _VALIDATOR_TEXT)
        text = await call_refused(client, "kb_list", {"bogus_arg": True})
        assert "unknown argument 'bogus_arg' (kb_list takes limit, cursor, tags, " in text
        listed = await call_ok(client, "kb_list", {"limit": 1})
        assert "documents" in listed
