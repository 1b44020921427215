"""Drive the real docker-compose.yml: a project of its own, its port, its containers."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

__all__ = ["ComposeProject", "docker_unavailable"]

REPO = Path(__file__).resolve().parents[2]
_PROBE_TIMEOUT_S = 20.0


def docker_unavailable() -> str | None:
    """Why the compose test cannot run here (None when a Docker engine and Compose answer)."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH: the compose end-to-end test needs a Docker engine"
    for argv, what in (
        (["docker", "info"], "engine"),
        (["docker", "compose", "version"], "compose"),
    ):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"docker {what} did not answer ({type(exc).__name__})"
        if done.returncode != 0:
            return (
                f"no Docker {what} answers (`{' '.join(argv)}` failed): the compose test needs one"
            )
    return None


@dataclass
class ComposeProject:
    """One compose project of the repository's file, with timings of each step."""

    env: Mapping[str, str]
    name: str = field(default_factory=lambda: "kbmcp-e2e-" + secrets.token_hex(4))
    timings: dict[str, float] = field(default_factory=dict)

    def run(
        self, *args: str, step: str | None = None, timeout_s: float = 600.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-p", self.name, "-f", str(REPO / "docker-compose.yml")]
        started = time.monotonic()
        done = subprocess.run(
            [*argv, *args], cwd=REPO, env=dict(self.env), capture_output=True, text=True,
            timeout=timeout_s,
        )  # fmt: skip
        if step is not None:
            self.timings[step] = round(time.monotonic() - started, 1)
        if check and done.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{done.stderr[-4000:]}")
        return done

    def exec_app(self, *argv: str, step: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("exec", "-T", "app", *argv, step=step, check=False)

    def base_url(self) -> str:
        port = self.run("port", "app", "8080").stdout.strip().rsplit(":", 1)[1]
        return f"http://127.0.0.1:{port}"

    def container(self, service: str) -> dict[str, Any]:
        ids = self.run("ps", "-a", "-q", service).stdout.split()
        assert ids, f"no container for {service}"
        done = subprocess.run(
            ["docker", "inspect", ids[0]], env=dict(self.env), capture_output=True, text=True,
            check=True, timeout=60,
        )  # fmt: skip
        document: list[dict[str, Any]] = json.loads(done.stdout)
        return document[0]

    def logs(self) -> str:
        return self.run("logs", "--no-color", check=False, timeout_s=120).stdout[-20000:]


def readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    """/readyz status and JSON (status 0 when the server does not answer)."""
    try:
        response = httpx2.get(f"{base_url}/readyz", timeout=5.0)
    except httpx2.HTTPError:
        return 0, {}
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    return response.status_code, body


def in_service(body: Mapping[str, Any]) -> dict[str, str | None]:
    return {s["name"]: s.get("in_service_version_id") for s in body.get("secrets", [])}


def versions_of(outputs: Sequence[str]) -> list[str]:
    """new_version_id of each `kb-mcp secrets rotate ... --json` output."""
    return [str(json.loads(out)["new_version_id"]) for out in outputs]
