"""What `kb-mcp dev` prints once it serves: where things are and how to connect a client.

Plain text on stderr (stdout stays free), written once the HTTP server listens. The
client snippets hold no secret: moto accepts any AWS credentials, so the stdio snippet
uses obvious placeholders, and the OpenAI key lives only in the local Secrets Manager.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = ["StackInfo", "render_banner", "stdio_command"]

_PLACEHOLDER_AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@dataclass(frozen=True, slots=True)
class StackInfo:
    """Everything the banner names; no secret values."""

    url: str
    data_dir: Path
    postgres_port: int
    postgres_version: str
    aws_endpoint_url: str
    aws_region: str
    openai_base_url: str
    secret_names: tuple[str, ...]
    rotate_every_s: float | None
    cache_ttl_s: float
    pid: int


def stdio_command() -> list[str]:
    """An absolute command line for `kb-mcp` (desktop clients start it with a bare PATH).

    The console script beside this interpreter first: from the README's install that is
    `.venv/bin/kb-mcp`, activated or not, as the README's snippet says.
    """
    beside = Path(sys.executable).parent / "kb-mcp"
    if beside.is_file():
        return [str(beside.absolute())]
    found = shutil.which("kb-mcp")
    if found is not None:
        return [str(Path(found).absolute())]
    return [sys.executable, "-m", "kb_mcp"]


def _indented(data: Any, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in json.dumps(data, indent=2).splitlines())


def render_banner(info: StackInfo) -> str:
    """The text printed when the stack is ready."""
    base = info.url.removesuffix("/mcp")
    command = stdio_command()
    stdio_env = {
        "KB_MCP_ENV": "development",
        "AWS_ENDPOINT_URL": info.aws_endpoint_url,
        "AWS_REGION": info.aws_region,
        **_PLACEHOLDER_AWS,
        "OPENAI_BASE_URL": info.openai_base_url,
    }
    http_snippet = {"mcpServers": {"kb-mcp": {"type": "http", "url": info.url}}}
    stdio_snippet = {
        "mcpServers": {
            "kb-mcp": {
                "command": command[0],
                "args": [*command[1:], "serve", "--transport", "stdio"],
                "env": stdio_env,
            }
        }
    }
    if info.rotate_every_s:
        rotation = (
            f"both secrets every {info.rotate_every_s:g} s; the server re-reads them every "
            f"{info.cache_ttl_s:g} s (watch for secret.rotation_detected, db.pool_swapped)"
        )
    else:
        rotation = "off (--rotate-every SECONDS to watch hot reloads)"
    lines = [
        "",
        "kb-mcp dev: the local stack is ready",
        f"  MCP endpoint    {info.url}  (streamable HTTP, no token on loopback)",
        f"  health          {base}/healthz   readiness and secret versions: {base}/readyz",
        f"  data folder     {info.data_dir}  (PostgreSQL {info.postgres_version} + pgvector on "
        f"127.0.0.1:{info.postgres_port}; kept between runs, --reset wipes it)",
        f"  secrets         moto at {info.aws_endpoint_url} (in memory, seeded on each start): "
        + ", ".join(info.secret_names),
        f"  embeddings      {info.openai_base_url} (local, offline, feature hashing)",
        f"  rotation        {rotation}",
        "",
        "Connect an MCP client over HTTP (clients that speak streamable HTTP):",
        _indented(http_snippet),
        f"  or: claude mcp add --transport http kb-mcp {info.url}",
        "",
        "Or over stdio (e.g. Claude Desktop's claude_desktop_config.json). It talks to this",
        "stack's moto and embeddings ports, which change on every start, so it works while",
        "this command runs (moto accepts any AWS credentials):",
        _indented(stdio_snippet),
        "",
        f"Stop: Ctrl-C (or kill -TERM {info.pid}) stops the server, PostgreSQL, moto and the "
        "embeddings endpoint.",
        "",
    ]
    return "\n".join(lines)


def print_banner(info: StackInfo, stream: TextIO | None = None) -> None:
    """Write the banner to ``stream`` (default stderr)."""
    out = stream if stream is not None else sys.stderr
    out.write(render_banner(info) + "\n")
    out.flush()
