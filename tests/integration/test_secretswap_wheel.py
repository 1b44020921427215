"""secretswap from its wheel alone, in a fresh venv without kb-mcp: the httpx example runs
its drill against moto and a partner API (rotations under load, a 401 recovered, a probe
raising httpx's own error) with no failed call.

Slow: it builds the wheel and installs it with its `aws` extra and httpx into a new venv
(from the machine's package index or cache).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import venv
from pathlib import Path

import aioboto3
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fakes import watch
from tests.support.knowledge_base import serve_asgi

LIBRARY = Path(__file__).resolve().parents[2] / "secretswap"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with only the secretswap wheel (extra `aws`) and httpx installed."""
    base = tmp_path_factory.mktemp("secretswap-wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base), str(LIBRARY)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = base.glob("secretswap-*.whl")
    root = base / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    done = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", f"secretswap[aws] @ {wheel.as_uri()}", "httpx"],
        capture_output=True, text=True, timeout=1100, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return root


class Partner:
    """`GET /v1/ping`: 200 for an issued key, else 401; `/admin/keys` issues and revokes."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/v1/ping", self._ping),
                Route("/admin/keys", self._admin, methods=["POST", "DELETE"]),
            ]
        )

    async def _ping(self, request: Request) -> Response:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or key not in self.keys:
            return JSONResponse({"error": "invalid api key"}, status_code=401)
        return JSONResponse({"ok": True})

    async def _admin(self, request: Request) -> Response:
        key = str((await request.json())["key"])
        watch(key)
        if request.method == "POST":
            self.keys.add(key)
        else:
            self.keys.discard(key)
        return Response(status_code=204)


async def test_the_httpx_example_runs_its_drill_from_the_wheel_alone(
    wheel_venv: Path, aws_env: str
) -> None:
    """0 failed calls through 3 rotations and a 401; the foreign probe error is contained."""
    python = str(wheel_venv / "bin" / "python")
    probe = "import importlib.util as u; print(u.find_spec('kb_mcp') is None)"
    alone = await _run(python, ["-c", probe], {"PATH": "/usr/bin:/bin"}, cwd=wheel_venv)
    assert alone.stdout.strip() == "True", alone.stderr
    partner = Partner()
    key = "pk-" + secrets.token_urlsafe(24)
    watch(key)
    partner.keys.add(key)
    name = "partner/test/api-key-" + secrets.token_hex(4)
    async with aioboto3.Session().client("secretsmanager", endpoint_url=aws_env) as sm:
        await sm.create_secret(Name=name, SecretString=key)
    async with serve_asgi(partner.app) as base_url:
        env = {
            "PATH": "/usr/bin:/bin",
            "PARTNER_SECRET_NAME": name,
            "PARTNER_BASE_URL": base_url,
            "AWS_ENDPOINT_URL": aws_env,
            **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
        }
        drill = await _run(
            python, [str(LIBRARY / "examples" / "httpx_drill.py")], env, cwd=wheel_venv
        )
    assert drill.returncode == 0, drill.stderr[-3000:] + drill.stdout[-1000:]
    figures = json.loads(drill.stdout.strip().splitlines()[-1])
    assert figures["failed"] == 0, figures
    assert figures["calls"] > 0
    assert figures["swaps"] == 4
    assert figures["rejected"] == [[True, "HTTPStatusError"]]
    assert figures["kb_mcp_importable"] is False


async def _run(
    python: str, args: list[str], env: dict[str, str], *, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run `python args` without blocking this loop (the partner API is served on it)."""
    process = await asyncio.create_subprocess_exec(
        python, *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 600)
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())
