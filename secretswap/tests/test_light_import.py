"""Importing secretswap is light: no AWS SDK, database driver, HTTP client or logging
framework, and nothing of kb-mcp."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "asyncpg",
    "openai",
    "mcp",
    "httpx",
    "httpx2",
    "aiohttp",
    "structlog",
    "rich",
    "pydantic_settings",
    "kb_mcp",
)

PROGRAM = """
import json, sys
import secretswap
print(json.dumps(sorted(sys.modules)))
"""


def test_import_loads_no_heavy_or_foreign_package() -> None:
    """A fresh interpreter importing secretswap has none of the forbidden top-level packages."""
    output = subprocess.run(
        [sys.executable, "-c", PROGRAM], check=True, capture_output=True, text=True
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(output)}
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
    assert "secretswap" in loaded
