"""The README stays a short first page that is true: its commands, snippets, links and limits."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kb_mcp.devstack.banner import StackInfo, render_banner
from kb_mcp.server.validation import (
    MAX_CONTENT_CHARS,
    MAX_EXTERNAL_ID_CHARS,
    MAX_METADATA_BYTES,
    MAX_TAG_CHARS,
    MAX_TAGS,
)

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
TOOLS = (REPO / "docs" / "TOOLS.md").read_text(encoding="utf-8")


def _json_blocks(text: str) -> list[dict[str, object]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]


def test_the_readme_is_a_short_first_page_with_the_two_commands() -> None:
    """At most ~150 lines; the install-and-run and the test commands exactly as documented."""
    assert len(README.splitlines()) <= 150
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -e ./secretswap -e '.[local]'"
        " && .venv/bin/kb-mcp dev" in README
    )
    assert "bash .ci/run" in README


def test_every_path_the_readme_names_exists() -> None:
    """docs/..., secrets/..., bench/... named in the README are files or folders of the repo."""
    named = set(re.findall(r"`((?:docs|secrets|bench)/[\w./*-]+)`", README))
    assert "docs/PERFORMANCE.md" in named
    for path in named:
        if "*" in path:
            assert list(REPO.glob(path)), path
        else:
            assert (REPO / path).exists(), path


def test_the_readme_stdio_snippet_is_the_one_kb_mcp_dev_prints() -> None:
    """Same server name, command, arguments and environment names as the banner's snippet."""
    info = StackInfo(
        url="http://127.0.0.1:8080/mcp",
        data_dir=Path(".kb-mcp"),
        postgres_port=5432,
        postgres_version="16",
        aws_endpoint_url="http://127.0.0.1:5001",
        aws_region="us-east-1",
        openai_base_url="http://127.0.0.1:5002/v1",
        secret_names=("kb-mcp/dev/openai-api-key",),
        rotate_every_s=None,
        cache_ttl_s=30.0,
        pid=1,
    )
    banner = render_banner(info)
    start = banner.index("{", banner.index("Or over stdio"))
    printed, _ = json.JSONDecoder().raw_decode(banner[start:])
    readme = [b for b in _json_blocks(README) if "command" in json.dumps(b)]
    assert len(readme) == 1
    ours, theirs = readme[0]["mcpServers"], printed["mcpServers"]
    assert isinstance(ours, dict)
    assert list(ours) == list(theirs) == ["kb-mcp"]
    assert ours["kb-mcp"]["command"].endswith("/.venv/bin/kb-mcp")
    assert ours["kb-mcp"]["args"] == theirs["kb-mcp"]["args"]
    assert list(ours["kb-mcp"]["env"]) == list(theirs["kb-mcp"]["env"])
    assert ours["kb-mcp"]["env"]["KB_MCP_ENV"] == "development"


def test_the_documented_limits_are_the_enforced_ones() -> None:
    """README and docs/TOOLS.md say the limits of kb_mcp/server/validation.py."""
    assert f"up to {MAX_CONTENT_CHARS:,} characters" in README
    assert f"up to {MAX_TAGS} `tags` of {MAX_TAG_CHARS} characters" in README
    assert f"1-{MAX_CONTENT_CHARS:,} characters" in TOOLS
    assert f"at most {MAX_TAGS}, each 1-{MAX_TAG_CHARS} characters" in TOOLS
    assert f"1-{MAX_EXTERNAL_ID_CHARS} characters" in TOOLS
    assert f"{MAX_METADATA_BYTES:,} bytes" in TOOLS
