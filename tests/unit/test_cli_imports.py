"""What the command line imports: `--help` nothing heavy; each transport only when chosen."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("openai", "aioboto3", "botocore", "asyncpg", "mcp", "uvicorn", "pydantic", "structlog")


def _modules_after(code: str) -> set[str]:
    """The names in `sys.modules` after running `code` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    names: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return set(names)


def _loaded(modules: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in modules)


def test_help_imports_none_of_the_heavy_packages() -> None:
    """`kb-mcp --help` (and `serve --help`) load no SDK, database driver or client library."""
    for argv in (["--help"], ["serve", "--help"]):
        code = (
            "import contextlib, io\n"
            "from kb_mcp.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            f"    main({argv!r})"
        )
        modules = _modules_after(code)
        assert "kb_mcp.cli" in modules
        assert [p for p in HEAVY if _loaded(modules, p)] == [], argv
        assert not _loaded(modules, "kb_mcp.runtime")


def test_serve_module_leaves_both_transports_unloaded() -> None:
    """Importing `kb_mcp.runtime.serve` loads neither uvicorn nor the stdio adapter: each
    transport's code is imported by the branch that serves it."""
    modules = _modules_after("import kb_mcp.runtime.serve")
    assert "kb_mcp.runtime.supervisor" in modules
    assert not _loaded(modules, "uvicorn.protocols")
    assert "kb_mcp.runtime.http_transport" not in modules
    assert "kb_mcp.server.stdio" not in modules


def test_secret_shapes_load_no_aws_sdk() -> None:
    """Importing the secrets' shapes (`kb_mcp.secrets.schemas`) loads neither aioboto3 nor
    botocore; the package's AWS provider is imported when first named."""
    modules = _modules_after("import kb_mcp.secrets.schemas")
    assert [p for p in ("aioboto3", "botocore") if _loaded(modules, p)] == []
    named = _modules_after("from kb_mcp.secrets import AwsSecretsManagerProvider")
    assert _loaded(named, "aioboto3")
