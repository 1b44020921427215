"""`kb-mcp dev`: the embedded local stack, run as a real subprocess.

It must reach ready, answer MCP searches over streamable HTTP, survive secret rotations
without a failed request, stop everything it started on SIGINT, keep its data between
runs, and start again after a crash left its PostgreSQL running.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx2
import pytest
from mcp import Client

from kb_mcp.devstack.banner import StackInfo, render_banner
from kb_mcp.devstack.postgres import PostgresCluster, PostgresClusterError
from kb_mcp.ops.drill.load import mcp_client
from tests.support.fakes import fake_openai_key
from tests.support.processes import KbMcpProcess, base_env

START_TIMEOUT_S = 90.0
ROTATION_BUDGET_S = 45.0
VACUUM_DOC = (
    "Tuning autovacuum in PostgreSQL",
    "Autovacuum removes dead tuples left by updates and deletes. Lower "
    "autovacuum_vacuum_scale_factor on large tables so vacuum runs before bloat grows, "
    "and watch pg_stat_user_tables for the last autovacuum time.",
)
OTHER_DOCS = (
    ("Sourdough starter care", "Feed the sourdough starter flour and water every day."),
    ("Bicycle chain maintenance", "Clean and oil the bicycle chain after riding in rain."),
)
VACUUM_QUERY = "how do I tune autovacuum for dead tuples in postgresql"


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Proc:
    """A process as /proc saw it: pid plus start time, so a reused pid is not confused."""

    pid: int
    start_ticks: str

    @classmethod
    def read(cls, pid: int) -> _Proc | None:
        stat = _stat_fields(pid)
        return None if stat is None else cls(pid, stat[19])

    def alive(self) -> bool:
        stat = _stat_fields(self.pid)
        return stat is not None and stat[19] == self.start_ticks and stat[0] != "Z"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _children_of(parents: set[int]) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat_fields(int(entry.name))
            if stat is not None and int(stat[1]) in parents:
                found.add(int(entry.name))
    return found


def _tree(root: int) -> set[_Proc]:
    """``root`` and every descendant, as /proc shows them now."""
    pids, frontier = {root}, {root}
    while frontier:
        frontier = _children_of(frontier) - pids
        pids |= frontier
    return {proc for pid in pids if (proc := _Proc.read(pid)) is not None}


def _pid(proc: KbMcpProcess) -> int:
    assert proc.proc is not None
    return proc.proc.pid


def _postmaster(data_dir: Path) -> tuple[int, Path]:
    lines = (data_dir / "postgres" / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    return int(lines[0]), Path(lines[4])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data folder the postgres system user can reach; any server left is stopped."""
    base = Path(tempfile.mkdtemp(prefix="kbdev-"))
    base.chmod(0o711)
    try:
        yield base / "data"
    finally:
        PostgresCluster(base / "data" / "postgres").stop_stale_server()
        shutil.rmtree(base, ignore_errors=True)


def _start_dev(data_dir: Path, *extra: str) -> KbMcpProcess:
    args = ("dev", "--port", "0", "--data-dir", str(data_dir), *extra)
    return KbMcpProcess(args, base_env(), handshake=True).start()


async def _wait_ready(proc: KbMcpProcess, http: httpx2.AsyncClient) -> str:
    """Base URL of the server once it says it is ready (`--ready-fd`); `/readyz` is 200 then."""
    started = await asyncio.to_thread(proc.wait_ready, START_TIMEOUT_S)
    base = f"http://127.0.0.1:{started['port']}"
    response = await http.get(f"{base}/readyz")
    assert response.status_code == 200, f"{response.text}\n{proc.text()}"
    return base


async def _stop(proc: KbMcpProcess, sig: signal.Signals = signal.SIGINT) -> int:
    proc.signal(sig)
    return await asyncio.to_thread(proc.wait, 60.0)


# ---------------------------------------------------------------- MCP calls


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, [getattr(block, "text", "") for block in result.content]
    content = result.structured_content
    assert isinstance(content, dict)
    return content


async def _add(client: Client, title: str, content: str) -> str:
    result = await client.call_tool("kb_add", {"title": title, "content": content, "tags": []})
    return str(_structured(result)["id"])


async def _top_hit(client: Client, query: str) -> str:
    result = await client.call_tool("kb_search", {"query": query, "limit": 3})
    hits = _structured(result)["hits"]
    assert hits, "search returned no hit"
    return str(hits[0]["id"])


async def _search_through_rotations(
    client: Client, http: httpx2.AsyncClient, base: str, expected_id: str
) -> tuple[dict[str, list[str]], int]:
    """Search and read /readyz until every secret has served three versions; (versions, calls).

    Any failed call, wrong ranking or non-200 readiness fails the test at once.
    """
    seen: dict[str, list[str]] = {}
    calls = 0
    deadline = time.monotonic() + ROTATION_BUDGET_S
    while time.monotonic() < deadline:
        assert await _top_hit(client, VACUUM_QUERY) == expected_id
        response = await http.get(f"{base}/readyz")
        assert response.status_code == 200, response.text
        calls += 2
        for secret in response.json()["secrets"]:
            version = secret.get("in_service_version_id") or secret["version_id"]
            versions = seen.setdefault(secret["name"], [])
            if not versions or versions[-1] != version:
                versions.append(version)
        if len(seen) >= 2 and all(len(versions) >= 3 for versions in seen.values()):
            return seen, calls
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than two rotations seen in {ROTATION_BUDGET_S}s: {seen}")


# ---------------------------------------------------------------- tests


@pytest.mark.slow
async def test_dev_stack_serves_rotates_stops_and_restarts(data_dir: Path) -> None:
    """Ready, searchable, zero failures over two rotations, clean SIGINT, data kept, crash ok."""
    async with httpx2.AsyncClient(timeout=30.0) as http:
        # First run: rotate every 2 s while searching.
        first = _start_dev(data_dir, "--rotate-every", "2")
        try:
            base = await _wait_ready(first, http)
            assert f"data folder     {data_dir}" in first.wait_for_text("data folder")
            async with mcp_client(f"{base}/mcp", None) as client:
                doc_id = await _add(client, *VACUUM_DOC)
                for title, content in OTHER_DOCS:
                    await _add(client, title, content)
                assert await _top_hit(client, VACUUM_QUERY) == doc_id
                versions, calls = await _search_through_rotations(client, http, base, doc_id)
            assert calls >= 6
            assert all(len(set(v)) >= 3 for v in versions.values())
            assert first.events("secret.rotation_detected")
            assert first.events("db.pool_swapped")
            assert not first.events("devstack.rotation_failed")
            postmaster_pid, socket_dir = _postmaster(data_dir)
            started = _tree(_pid(first)) | _tree(postmaster_pid)
            assert len(started) > 2  # the dev process and postgres with its workers
            assert await _stop(first) == 0
        finally:
            first.kill()
        left = [proc.pid for proc in started if proc.alive()]
        assert left == [], f"processes left behind: {left}"
        assert not (data_dir / "postgres" / "postmaster.pid").exists()
        assert not socket_dir.exists()

        # Second run: the document is still there; then it crashes (SIGKILL).
        second = _start_dev(data_dir)
        try:
            base = await _wait_ready(second, http)
            async with mcp_client(f"{base}/mcp", None) as client:
                assert await _top_hit(client, VACUUM_QUERY) == doc_id
            orphan = _Proc.read(_postmaster(data_dir)[0])
        finally:
            second.kill()
        assert orphan is not None
        assert orphan.alive(), "postgres should outlive a crashed kb-mcp dev"

        # Third run: the orphaned server does not block the start; SIGINT stops cleanly.
        third = _start_dev(data_dir)
        try:
            base = await _wait_ready(third, http)
            assert third.events("postgres.stale_server_stopped")
            async with mcp_client(f"{base}/mcp", None) as client:
                assert await _top_hit(client, VACUUM_QUERY) == doc_id
            assert await _stop(third, signal.SIGTERM) == 0
        finally:
            third.kill()
        assert not orphan.alive()


def test_cluster_start_copes_with_a_crashed_owner() -> None:
    """A server left running is refused, then stopped; a pid file naming another process goes."""
    base = Path(tempfile.mkdtemp(prefix="kbpgc-"))
    base.chmod(0o711)
    try:
        crashed = PostgresCluster(base / "data", durable=False, max_connections=20)
        crashed.start()  # and never stopped by its owner, as after a crash
        heir = PostgresCluster(base / "data", durable=False, max_connections=20)
        assert heir.previous_server() == "running"
        with pytest.raises(PostgresClusterError, match="already running"):
            heir.start()
        assert heir.stop_stale_server()
        assert heir.previous_server() == "none"
        assert not heir.stop_stale_server()
        # A pid file whose pid now belongs to an unrelated live process (this one).
        (base / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n{base}\n", encoding="utf-8")
        assert heir.previous_server() == "foreign"
        with heir:
            assert heir.previous_server() == "running"
        # A pid file whose process is gone: postgres replaces it.
        (base / "data" / "postmaster.pid").write_text("4194303\n", encoding="utf-8")
        assert heir.previous_server() == "gone"
        with heir:
            assert heir.running
    finally:
        PostgresCluster(base / "data").stop_stale_server()
        shutil.rmtree(base, ignore_errors=True)


def test_embeddings_server_process_checks_the_key() -> None:
    """`python -m kb_mcp.devstack.embeddings_server` (compose's embeddings) embeds with its key."""
    key = fake_openai_key()
    assert run_kb_mcp_module("kb_mcp.devstack.embeddings_server", env=base_env()).returncode == 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb_mcp.devstack.embeddings_server", "--port", "0"],
        env=base_env(OPENAI_API_KEY=key),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        with httpx2.Client(base_url=_running_url(proc.stderr), timeout=10.0) as http:
            assert http.get("/healthz").status_code == 200
            body = {"model": "text-embedding-3-small", "input": "hello world"}
            assert http.post("/v1/embeddings", json=body).status_code == 401
            answer = http.post(
                "/v1/embeddings", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 200
            assert len(answer.json()["data"][0]["embedding"]) == 1536
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises SIGTERM after its graceful shutdown, as a container expects.
        assert proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _running_url(stream: IO[str]) -> str:
    for line in stream:
        match = re.search(r"Uvicorn running on (http://\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError("the embeddings server exited before listening")


def run_kb_mcp_module(module: str, *, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m MODULE` to completion."""
    return subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_banner_tells_how_to_connect_without_secrets() -> None:
    """The banner names the URL, the data folder and both client snippets; no credential."""
    info = StackInfo(
        url="http://127.0.0.1:8080/mcp",
        data_dir=Path("/somewhere/.kb-mcp"),
        postgres_port=5555,
        postgres_version="16",
        aws_endpoint_url="http://127.0.0.1:5001",
        aws_region="us-east-1",
        openai_base_url="http://127.0.0.1:5002/v1",
        secret_names=("kb-mcp/dev/openai-api-key", "kb-mcp/dev/postgres-credentials"),
        rotate_every_s=None,
        cache_ttl_s=30.0,
        pid=1234,
    )
    text = render_banner(info)
    assert '"url": "http://127.0.0.1:8080/mcp"' in text
    assert '"stdio"' in text
    assert '"AWS_ENDPOINT_URL": "http://127.0.0.1:5001"' in text
    assert "/somewhere/.kb-mcp" in text
    assert "Ctrl-C" in text
    assert "sk-" not in text
    assert "password" not in text.lower()
