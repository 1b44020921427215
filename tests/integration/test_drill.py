"""`kb-mcp drill` against the embedded local stack: zero failures through rotations, and
the same drill catching dropped requests when the test breaks the stack under it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aioboto3
import asyncpg

from kb_mcp.devstack.stack import APP_USERS
from kb_mcp.ops.drill.load import mcp_client
from tests.support.processes import KbMcpProcess, base_env

DRILL_ARGS = ("--concurrency", "8", "--warmup", "2", "--interval", "0.3", "--cooldown", "1")


def _drill(stack_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kb_mcp",
            "drill",
            "--stack-dir",
            str(stack_dir),
            "--json",
            "--no-progress",
            *DRILL_ARGS,
            *args,
        ],
        env=base_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=240)
    # stdout is the report alone: the rotations' log lines go to stderr.
    assert len(out.strip().splitlines()) <= 1, out[:2000]
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    return proc.returncode, report, err


async def _master(stack: dict[str, Any]) -> dict[str, Any]:
    env = stack["environment"]
    session = aioboto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    async with session.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"]) as sm:
        value = await sm.get_secret_value(
            SecretId="kb-mcp/dev/postgres-master", VersionStage="AWSCURRENT"
        )
    master: dict[str, Any] = json.loads(value["SecretString"])
    return master


async def _set_login(stack: dict[str, Any], allowed: bool) -> None:
    """NOLOGIN both application roles and end their sessions (or allow them again)."""
    master = await _master(stack)
    conn = await asyncpg.connect(
        user=master["username"], password=master["password"], host=master["host"],
        port=master["port"], database=master["database"],
    )  # fmt: skip
    try:
        for role in APP_USERS:
            await conn.execute(f"ALTER ROLE {role} {'LOGIN' if allowed else 'NOLOGIN'}")
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE usename = ANY($1::text[])",
                list(APP_USERS),
            )
    finally:
        await conn.close()


async def _document_count(url: str) -> int:
    async with mcp_client(url, None) as client:
        result = await client.call_tool("kb_list", {"limit": 1})
    assert isinstance(result.structured_content, dict)
    return int(result.structured_content["total"])


async def _documents_above(url: str, count: int, timeout_s: float = 60.0) -> None:
    """Return once the knowledge base holds more than `count` documents (polled over MCP)."""
    async with asyncio.timeout(timeout_s):
        # Another process's state: there is no handshake to await, only a poll.
        while await _document_count(url) <= count:  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.05)


async def test_drill_passes_through_rotations_and_catches_drops() -> None:
    """Two rotations of each secret under load: 0 failures, exit 0, and the document count as
    before (the drill removed what it added). Then the application roles refused at the
    database without a rotation: the drill reports failures and exits 1. `secrets verify`
    beside the stack finds it through stack.json and passes."""
    base = Path(tempfile.mkdtemp(prefix="kbdrill-"))
    os.chmod(base, 0o711)  # noqa: S103 - as root, the postgres user must traverse it
    data = base / "stack"
    dev = KbMcpProcess(
        ("dev", "--port", "0", "--data-dir", str(data)),
        base_env(SECRETS_CACHE_TTL_SECONDS="1"),
        handshake=True,
    ).start()
    try:
        await asyncio.to_thread(dev.wait_ready, 120.0)
        stack = json.loads((data / "stack.json").read_text())

        before = await _document_count(stack["mcp_url"])
        code, report, err = await asyncio.to_thread(_finish, _drill(data, "--rotations", "2"))
        assert code == 0, err[-3000:]
        assert report["documents_added"] > 0
        assert report["documents_removed"] == report["documents_added"]
        assert await _document_count(stack["mcp_url"]) == before
        assert "expect about" in err
        assert report["verdict"] == "pass"
        assert report["failures"] == 0
        assert report["requests"] > 20
        assert len(report["rotations"]) == 4
        assert all(r["pickup_s"] is not None for r in report["rotations"])
        assert report["latency"]["steady"]["p99_ms"] is not None

        breaking = _drill(data, "--rotations", "0", "--keep")
        await _documents_above(stack["mcp_url"], before)  # the drill's load has begun
        await _set_login(stack, allowed=False)
        code, report, err = await asyncio.to_thread(_finish, breaking)
        await _set_login(stack, allowed=True)
        assert code == 1
        assert report["verdict"] == "fail"
        assert report["failures"] > 0
        master_password = (await _master(stack))["password"]
        assert master_password not in json.dumps(report)
        assert master_password not in err

        verify = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "kb_mcp", "secrets", "verify"],
            env=base_env(KB_MCP_STACK_DIR=str(data)), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stderr[-3000:]
        assert "using the local stack of kb-mcp dev" in verify.stderr

        dev.signal(signal.SIGINT)
        assert await asyncio.to_thread(dev.wait, 60) == 0
        assert not (data / "stack.json").exists()
    finally:
        dev.kill()
        shutil.rmtree(base, ignore_errors=True)


def test_drill_without_a_stack_says_no_local_stack_is_running(tmp_path: Path) -> None:
    """No --url and no live stack.json: one clear line and exit 2, before any load."""
    done = subprocess.run(
        [sys.executable, "-m", "kb_mcp", "drill", "--stack-dir", str(tmp_path), "--no-progress"],
        env=base_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no local stack is running" in done.stderr


def test_every_drill_option_has_help_text() -> None:
    """`kb-mcp drill --help` documents every option (none is left bare)."""
    import argparse

    from kb_mcp.ops.drill import register

    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    register(subparsers)
    drill = subparsers.choices["drill"]
    bare = [a.option_strings for a in drill._actions if a.option_strings and not a.help]
    assert bare == []
