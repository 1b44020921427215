"""Bulk ingest: `kb-mcp import` and `kb_add_many` against one-at-a-time `kb_add` over MCP.

One run, one stack (`bench._stack`: PostgreSQL, moto; the product's local embeddings
endpoint, `kb_mcp.devstack.embeddings_server`, 1536 dimensions), one `kb-mcp serve
--transport http`. The same N small documents (a few hundred characters, all different)
are stored three ways, each into a namespace of its own (so none meets the others' rows
as duplicates):

- `kb_add`: C MCP clients (streamable HTTP, `mcp.Client`), each adding its share one
  document per call, back to back: what an agent loop does today (the issue's baseline:
  into a knowledge base that is empty, by a server just started);
- `kb_add` again, the same documents into another namespace: the server warm and 1,000
  documents stored. It has measured 2-3x faster than the first pass (see
  `docs/PERFORMANCE.md`), so the import is compared with both;
- `kb_add_many`: C clients sending batches of 100 (`--batch`);
- `kb-mcp import DIR`: the command, as a user runs it, on a directory of N markdown files
  (its own process: Python, its imports, the secrets from Secrets Manager, the pool and
  the migrations check, the import, the exit); two rows: the whole command's wall time
  (what a user waits for; the issue's "at least 5x" is this row) and the import once
  booted, as the command prints it. Their difference, the command's start-up and exit,
  is reported beside them as `boot`.

It prints documents per second of each and the ratio to `kb_add`, and `/proc/loadavg`
(the machine is shared: compare the rows of one run, not runs).

    python -m bench.bench_bulk [--quick] [--json] [--documents 1000] [--clients 8]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client

from bench import bench_parser, finish, machine, print_table
from bench._procs import free_port, python_argv, spawn
from bench._stack import open_stack
from kb_mcp.observability.logging import configure_logging

DIMENSIONS = 1536
_WORDS = [
    "harbour",
    "lighthouse",
    "tide",
    "ferry",
    "storm",
    "anchor",
    "pilot",
    "buoy",
    "quay",
    "crane",
    "berth",
    "cargo",
    "manifest",
    "customs",
    "tug",
    "hull",
    "keel",
    "mast",
    "sail",
    "rope",
    "chart",
    "compass",
    "beacon",
    "signal",
]


def document(n: int, run: str) -> dict[str, Any]:
    """A small document, different for every n."""
    words = [_WORDS[(n * 7 + i * 3) % len(_WORDS)] for i in range(40)]
    return {
        "title": f"Harbour note {n}",
        "content": f"Note {n} of run {run}. " + " ".join(words) + f". Reference {n * 7919}.",
        "tags": ["bench", f"group-{n % 10}"],
    }


async def _kb_add(
    url: str, docs: list[dict[str, Any]], clients: int, namespace: str = "one"
) -> tuple[float, int]:
    """Seconds for `clients` sessions to add `docs` one per call; failed calls."""
    failed = 0

    async def client(share: list[dict[str, Any]]) -> None:
        nonlocal failed
        async with Client(f"{url}/mcp", cache=None) as session:
            for doc in share:
                result = await session.call_tool("kb_add", {**doc, "namespace": namespace})
                failed += bool(result.is_error)

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i in range(clients):
            group.create_task(client(docs[i::clients]))
    return time.perf_counter() - began, failed


async def _kb_add_many(
    url: str, docs: list[dict[str, Any]], clients: int, batch: int
) -> tuple[float, int]:
    """Seconds for `clients` sessions to add `docs` in batches of `batch`; failed items."""
    batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]
    failed = 0

    async def client(share: list[list[dict[str, Any]]]) -> None:
        nonlocal failed
        async with Client(f"{url}/mcp", cache=None) as session:
            for items in share:
                result = await session.call_tool(
                    "kb_add_many", {"documents": items, "namespace": "many"}
                )
                if result.is_error or not isinstance(result.structured_content, dict):
                    failed += len(items)
                else:
                    failed += int(result.structured_content["failed"])

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i in range(clients):
            group.create_task(client(batches[i::clients]))
    return time.perf_counter() - began, failed


async def _import(env: dict[str, str], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """`kb-mcp import` of the documents as markdown files: its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        root = Path(folder)
        for n, doc in enumerate(docs):
            (root / f"note-{n:05d}.md").write_text(
                f"# {doc['title']}\n\n{doc['content']}\n", encoding="utf-8"
            )
        began = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *python_argv("", "kb_mcp.cli:main", "import", folder, "--namespace", "import"),
            "--no-progress",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        wall = time.perf_counter() - began
    line = out.decode()
    found = re.search(r"imported (\d+) records in ([\d.]+) s .*?: (.*)", line)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"kb-mcp import failed ({process.returncode}): {err.decode()[-2000:]}")
    seconds = float(found.group(2))
    return {
        "seconds": seconds,
        "wall_s": round(wall, 2),
        "boot_s": round(wall - seconds, 2),
        "summary": found.group(3),
    }


async def run(documents: int, clients: int, batch: int) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    run_id = os.urandom(4).hex()
    docs = [document(n, run_id) for n in range(documents)]
    async with open_stack() as stack, contextlib.AsyncExitStack() as own:
        key = stack.keys[0]
        port = free_port()
        embeddings = await own.enter_async_context(
            spawn(
                "embeddings",
                [sys.executable, "-m", "kb_mcp.devstack.embeddings_server", "--port", str(port)],
                {**os.environ, "OPENAI_API_KEY": key, "KB_MCP_LOG_LEVEL": "WARNING"},
                port,
                "/healthz",
            )
        )
        env = stack.environment(
            OPENAI_BASE_URL=f"{embeddings.url}/v1",
            KB_MCP_EMBEDDING_DIMENSIONS=str(DIMENSIONS),
            KB_MCP_LOG_LEVEL="WARNING",
        )
        kb_port = free_port()
        kb = await own.enter_async_context(
            spawn(
                "kb-mcp",
                python_argv(
                    "", "kb_mcp.cli:main", "serve", "--transport", "http", "--port", str(kb_port)
                ),
                env,
                kb_port,
                "/readyz",
            )
        )
        one_s, one_failed = await _kb_add(kb.url, docs, clients)
        again_s, again_failed = await _kb_add(kb.url, docs, clients, namespace="again")
        many_s, many_failed = await _kb_add_many(kb.url, docs, clients, batch)
        imported = await _import(env, docs)
    per_s = documents / one_s
    return {
        "documents": documents,
        "clients": clients,
        "dimensions": DIMENSIONS,
        "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "kb_add": {"seconds": round(one_s, 2), "per_s": round(per_s, 1), "failed": one_failed},
        "kb_add_again": {
            "seconds": round(again_s, 2),
            "per_s": round(documents / again_s, 1),
            "x": round(one_s / again_s, 1),
            "failed": again_failed,
            "import_x_wall": round(again_s / imported["wall_s"], 1),
        },
        "kb_add_many": {
            "seconds": round(many_s, 2),
            "per_s": round(documents / many_s, 1),
            "x": round(one_s / many_s, 1),
            "failed": many_failed,
        },
        "import": {
            **imported,
            "per_s": round(documents / imported["seconds"], 1),
            "x": round(one_s / imported["seconds"], 1),
            "x_wall": round(one_s / imported["wall_s"], 1),
            "wall_per_s": round(documents / imported["wall_s"], 1),
        },
    }


def report(figures: dict[str, Any]) -> None:
    rows = [
        ("kb_add, one per call", figures["kb_add"]["seconds"], figures["kb_add"]["per_s"], 1.0, ""),
        (
            "kb_add again (warm)",
            figures["kb_add_again"]["seconds"],
            figures["kb_add_again"]["per_s"],
            figures["kb_add_again"]["x"],
            f"whole import command {figures['kb_add_again']['import_x_wall']}x faster than this",
        ),
        (
            "kb_add_many",
            figures["kb_add_many"]["seconds"],
            figures["kb_add_many"]["per_s"],
            figures["kb_add_many"]["x"],
            "",
        ),
        (
            "kb-mcp import, whole command",
            figures["import"]["wall_s"],
            figures["import"]["wall_per_s"],
            figures["import"]["x_wall"],
            f"boot and exit {figures['import']['boot_s']} s",
        ),
        (
            "kb-mcp import, once booted",
            figures["import"]["seconds"],
            figures["import"]["per_s"],
            figures["import"]["x"],
            figures["import"]["summary"],
        ),
    ]
    print_table(
        f"{figures['documents']} documents, {figures['clients']} clients, "
        f"{figures['dimensions']} dimensions; loadavg {figures['loadavg']}",
        ("path", "seconds", "docs/s", "x kb_add", "note"),
        rows,
    )


def main() -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    host = machine()
    documents = 24 if args.quick else args.documents
    figures = asyncio.run(run(documents, args.clients, args.batch))
    report(figures)
    finish("bench_bulk", figures, quick=args.quick, as_json=args.json, host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
