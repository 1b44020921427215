"""The secrets/*.sh scripts from the README's install: no venv activated, target named."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import aioboto3
import pytest

from kb_mcp.devstack.moto_server import MotoSecretsServer
from tests.support.fakes import fake_openai_key, watch
from tests.support.processes import base_env

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    p for p in (REPO / "secrets").glob("*.sh") if p.name != "build-rotation-package.sh"
)
"""The scripts that wrap a `kb-mcp secrets` command (the rotation package's builder is a
build step, not a wrapper: it downloads the Lambda runtime's wheels)."""


def _script(
    name: str, *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "secrets" / name), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    not (REPO / ".venv" / "bin" / "kb-mcp").exists(), reason="no .venv: not the README's install"
)
@pytest.mark.parametrize("script", [p.name for p in SCRIPTS])
def test_every_script_runs_from_the_readme_install_without_activating_it(
    script: str, tmp_path: Path
) -> None:
    """From another folder, with only the system PATH: the repository's .venv is found."""
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = _script(script, "--help", env=bare, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: kb-mcp secrets" in done.stdout
    assert "Traceback" not in done.stderr


def test_seed_names_its_target_and_refuses_production(tmp_path: Path) -> None:
    """No local stack, KB_MCP_ENV unset: seed names the Secrets Manager it would use, refuses."""
    env = base_env(
        PYTHON=sys.executable, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_REGION="eu-west-1"
    )
    done = _script("setup-local-secrets.sh", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "kb-mcp secrets seed: Secrets Manager at http://127.0.0.1:9 in eu-west-1" in done.stderr
    assert "refusing" in done.stderr


async def test_seed_beside_kb_mcp_dev_uses_its_stack(
    moto_server: MotoSecretsServer, tmp_path: Path
) -> None:
    """A live stack.json (as kb-mcp dev writes it): seed goes to its emulator, and says so."""
    secret_key = "test-secret-" + secrets.token_hex(16)
    watch(secret_key)
    stack_env = {
        "KB_MCP_ENV": "development",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "TESTKEY" + secrets.token_hex(6).upper(),
        "AWS_SECRET_ACCESS_KEY": secret_key,
    }
    folder = tmp_path / ".kb-mcp"
    folder.mkdir()
    stack = {"pid": os.getpid(), "mcp_url": "http://127.0.0.1:1/mcp", "environment": stack_env}
    (folder / "stack.json").write_text(json.dumps(stack))
    key = fake_openai_key()
    values = {"DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "app", "DB_NAME": "kb"}
    values["DB_PASSWORD"] = "pw-" + secrets.token_hex(8)
    watch(values["DB_PASSWORD"])
    env = base_env(PYTHON=sys.executable, OPENAI_API_KEY=key, **values)
    try:
        done = _script("setup-local-secrets.sh", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "kb-mcp secrets seed: using the local stack of kb-mcp dev" in done.stderr
        assert "created   kb-mcp/dev/openai-api-key" in done.stdout
        session = aioboto3.Session(
            aws_access_key_id=stack_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
        )
        async with session.client("secretsmanager", endpoint_url=moto_server.endpoint_url) as sm:
            got = await sm.get_secret_value(
                SecretId="kb-mcp/dev/openai-api-key", VersionStage="AWSCURRENT"
            )
        assert got["SecretString"] == key
    finally:
        moto_server.reset()
