"""The real docker-compose.yml end to end: rotations, `down`/`up` with the volume kept, and
`restart secretsmanager`, the app healthy and the knowledge base intact after each.

Runs when a Docker engine and Compose v2 answer (skipped with the reason otherwise; CI has
none). Slow: it builds the image. Timings of each step are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kb_mcp.ops.drill.load import mcp_client
from tests.e2e.compose import ComposeProject, docker_unavailable, in_service, readyz, versions_of
from tests.support.fakes import fake_openai_key, watch
from tests.support.processes import base_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(docker_unavailable() is not None, reason=str(docker_unavailable())),
]

PG_SECRET = "kb-mcp/dev/postgres-credentials"
OPENAI_SECRET = "kb-mcp/dev/openai-api-key"
_TTL_S = "2"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[ComposeProject]:
    """A compose project on a random host port, with a key file the seed reads; removed after."""
    key_file = tmp_path / "openai-api-key"
    key = fake_openai_key()
    watch(key)
    key_file.write_text(key + "\n", encoding="utf-8")
    key_file.chmod(0o644)  # the seed container runs as uid 10001
    env = base_env(
        KB_MCP_HOST_PORT="0", SECRETS_CACHE_TTL_SECONDS=_TTL_S, OPENAI_API_KEY_FILE=str(key_file)
    )
    env.update({k: v for k, v in os.environ.items() if k.startswith("DOCKER")})
    compose = ComposeProject(env)
    try:
        yield compose
    finally:
        compose.run("down", "-v", "--remove-orphans", check=False, timeout_s=300)
        print(f"\ncompose e2e timings (s): {json.dumps(compose.timings)}")


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.5)


async def _add_and_find(base_url: str, title: str) -> str:
    async with mcp_client(f"{base_url}/mcp", None) as client:
        added = await client.call_tool(
            "kb_add", {"title": title, "content": f"{title}: notes that survive restarts"}
        )
        assert not added.is_error, added.content
        assert isinstance(added.structured_content, dict)
        document_id = str(added.structured_content["id"])
        found = await client.call_tool("kb_search", {"query": title, "limit": 5})
    assert isinstance(found.structured_content, dict)
    assert document_id in [hit["id"] for hit in found.structured_content["hits"]]
    return document_id


async def _get(base_url: str, document_id: str) -> bool:
    async with mcp_client(f"{base_url}/mcp", None) as client:
        result = await client.call_tool("kb_get", {"id": document_id})
    return not result.is_error


async def test_compose_survives_rotations_down_up_and_an_emulator_restart(
    project: ComposeProject,
) -> None:
    """up --build; add + search; rotate postgres twice and the key once; down; up; restart
    secretsmanager: healthy after each, and the document still found."""
    project.run("up", "-d", "--build", "--wait", step="up --build", timeout_s=1200)
    base = project.base_url()
    images = {project.container(s)["Image"] for s in ("app", "embeddings", "seed-secrets")}
    assert len(images) == 1, "the three services run one image"
    seed_env = project.container("seed-secrets")["Config"]["Env"]
    assert not [v for v in seed_env if v.startswith("OPENAI_API_KEY")]
    document_id = await _add_and_find(base, "compose e2e first note")

    rotations: list[str] = []
    for _ in range(2):
        done = project.exec_app("kb-mcp", "secrets", "rotate", "postgres", "--json",
                                step=f"rotate postgres {len(rotations) + 1}")  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        rotations.append(done.stdout)
    done = project.exec_app("kb-mcp", "secrets", "rotate", "openai", "--generate", "--json",
                            step="rotate openai")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    pg_version, openai_version = versions_of([rotations[-1], done.stdout])
    started = time.monotonic()

    def both_in_service() -> bool:
        seen = in_service(readyz(base)[1])
        return seen.get(PG_SECRET) == pg_version and seen.get(OPENAI_SECRET) == openai_version

    await _until(both_in_service, "both rotations in service")
    project.timings["rotations picked up"] = round(time.monotonic() - started, 1)
    assert await _get(base, document_id)
    await _add_and_find(base, "compose e2e after rotations")

    project.run("down", step="down (volumes kept)", timeout_s=300)
    project.run("up", "-d", "--wait", step="up again", timeout_s=600)
    base = project.base_url()
    assert readyz(base)[0] == 200
    assert await _get(base, document_id)
    await _add_and_find(base, "compose e2e after down and up")

    project.run("restart", "secretsmanager", step="restart secretsmanager", timeout_s=300)
    started = time.monotonic()
    await _until(
        lambda: project.exec_app("kb-mcp", "secrets", "verify").returncode == 0,
        "secrets verify to pass after the emulator restart",
    )
    await _until(lambda: readyz(base)[0] == 200, "the app ready after the emulator restart")
    await _add_and_find(base, "compose e2e after the emulator restart")
    project.timings["recovered after emulator restart"] = round(time.monotonic() - started, 1)
    assert await _get(base, document_id)
