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
import httpx2

from tests.support.processes import KbMcpProcess, base_env

DRILL_ARGS = ("--concurrency", "8", "--warmup", "1", "--interval", "0.3", "--cooldown", "1")


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
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    return proc.returncode, report, err


async def _current_key(stack: dict[str, Any]) -> str:
    env = stack["environment"]
    session = aioboto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    async with session.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"]) as sm:
        value = await sm.get_secret_value(
            SecretId="kb-mcp/dev/openai-api-key", VersionStage="AWSCURRENT"
        )
    return str(value["SecretString"])


async def test_drill_passes_through_rotations_and_catches_drops() -> None:
    """Two rotations of each secret under load: 0 failures, exit 0. Then a key revoked at
    the endpoint without rotating the secret: the drill reports failures and exits 1."""
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

        code, report, err = await asyncio.to_thread(_finish, _drill(data, "--rotations", "2"))
        assert code == 0, err[-3000:]
        assert report["verdict"] == "pass"
        assert report["failures"] == 0
        assert report["requests"] > 20
        assert len(report["rotations"]) == 4
        assert all(r["pickup_s"] is not None for r in report["rotations"])
        assert report["latency"]["steady"]["p99_ms"] is not None

        key = await _current_key(stack)
        breaking = _drill(data, "--rotations", "0")
        # Revoked without a rotation, before or during the drill's load: every call that
        # embeds fails from then on.
        async with httpx2.AsyncClient() as http:
            response = await http.post(
                stack["embeddings_admin_url"],
                json={"revoke": key},
                headers={"Authorization": f"Bearer {stack['embeddings_admin_token']}"},
            )
            response.raise_for_status()
        code, report, err = await asyncio.to_thread(_finish, breaking)
        assert code == 1
        assert report["verdict"] == "fail"
        assert report["failures"] > 0
        assert any("embedding" in error for error in report["errors"])
        assert key not in json.dumps(report)
        assert key not in err

        dev.signal(signal.SIGINT)
        assert await asyncio.to_thread(dev.wait, 60) == 0
        assert not (data / "stack.json").exists()
    finally:
        dev.kill()
        shutil.rmtree(base, ignore_errors=True)
