"""The client's cost of one embeddings call: the SDK's `embeddings.create` against ours.

The local OpenAI-compatible endpoint runs in a child process (`bench._stack`), so the
client's CPU time (`time.process_time()` of this process, which does nothing else) is the
cost of building the request, sending it, reading and decoding the answer. Paths, timed
round-robin so background load hits each alike, at 1536 dimensions, for one text (a
search query) and a batch of 64 (a long document):

- `sdk float`: `client.embeddings.create(encoding_format="float")`, what the holder did;
- `sdk base64`: the same asking for base64 (the SDK decodes it, with numpy if installed);
- `lean array`: `kb_mcp.embeddings.lean.create_embeddings` (raw response, base64 decoded
  once with `array`) over the SDK's default httpx transport;
- `lean aiohttp`: the same over the SDK's aiohttp transport (`openai.DefaultAioHttpClient`,
  `kb_mcp.embeddings.holder.http_client`), what the holder does when aiohttp is installed;
- `decode numpy` / `decode array`: only the decoding of one answer body (no request),
  numpy's `frombuffer(...).tolist()` against `array`, when numpy is installed.

    python -m bench.bench_embeddings [--quick] [--json] [--calls 300]
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import sys
import time
from array import array
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import openai

from bench import bench_parser, finish, machine, percentile, print_table
from bench._stack import FakesProcess, fake_key
from kb_mcp.embeddings.holder import http_client
from kb_mcp.embeddings.lean import create_embeddings, decode_embeddings
from kb_mcp.observability.logging import configure_logging

DIMENSIONS = 1536
MODEL = "text-embedding-3-small"
Call = Callable[[list[str]], Awaitable[Any]]


def _paths(client: openai.AsyncOpenAI, over_aiohttp: openai.AsyncOpenAI) -> dict[str, Call]:
    async def sdk_float(texts: list[str]) -> Any:
        response = await client.embeddings.create(
            input=texts, model=MODEL, dimensions=DIMENSIONS, encoding_format="float"
        )
        return [list(item.embedding) for item in response.data]

    async def sdk_base64(texts: list[str]) -> Any:
        response = await client.embeddings.create(
            input=texts, model=MODEL, dimensions=DIMENSIONS, encoding_format="base64"
        )
        return [list(item.embedding) for item in response.data]

    async def lean_array(texts: list[str]) -> Any:
        return await create_embeddings(client, texts, model=MODEL, dimensions=DIMENSIONS)

    async def lean_aiohttp(texts: list[str]) -> Any:
        return await create_embeddings(over_aiohttp, texts, model=MODEL, dimensions=DIMENSIONS)

    return {
        "sdk float": sdk_float,
        "sdk base64": sdk_base64,
        "lean array": lean_array,
        "lean aiohttp": lean_aiohttp,
    }


async def _time(call: Call, texts: list[str], calls: int) -> tuple[float, float]:
    """Median wall and CPU microseconds per call over `calls` calls."""
    walls, cpus = [], []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        await call(texts)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return (percentile(walls, 50) or 0.0) * 1e6, (percentile(cpus, 50) or 0.0) * 1e6


def _decode_figures(body: bytes, repeats: int) -> dict[str, float]:
    """Microseconds to decode one answer body: array against numpy (when installed)."""
    item = json.loads(body)["data"][0]["embedding"]
    raw = base64.b64decode(item)

    def with_array() -> list[float]:
        floats = array("f")
        floats.frombytes(raw)
        return floats.tolist()

    paths: dict[str, Callable[[], object]] = {
        "decode array": with_array,
        "decode body (lean)": lambda: decode_embeddings(body, expected=1),
    }
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        paths["decode numpy"] = lambda: np.frombuffer(raw, dtype="<f4").tolist()
    figures = {}
    for name, fn in paths.items():
        began = time.perf_counter()
        for _ in range(repeats):
            fn()
        figures[name] = round((time.perf_counter() - began) / repeats * 1e6, 2)
    return figures


async def run(calls: int, rounds: int) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    async with FakesProcess.start() as fakes:
        key = fake_key()
        await fakes.command("allow", key)
        client = openai.AsyncOpenAI(api_key=key, base_url=fakes.openai_base_url, max_retries=0)
        over_aiohttp = openai.AsyncOpenAI(
            api_key=key,
            base_url=fakes.openai_base_url,
            max_retries=0,
            http_client=http_client("aiohttp", ssl.create_default_context()),
        )
        try:
            paths = _paths(client, over_aiohttp)
            batches = {"1 text": ["rotating database credentials"]}
            batches["64 texts"] = [f"passage {n} about rotation and keys" for n in range(64)]
            samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for texts in batches.values():  # warm every path (connections, imports)
                for call in paths.values():
                    await call(texts)
            for _ in range(rounds):
                for batch, texts in batches.items():
                    for name, call in paths.items():
                        timed = await _time(call, texts, calls)
                        samples.setdefault((batch, name), []).append(timed)
            body = (
                await client.post(
                    "/embeddings",
                    body={"input": ["q"], "model": MODEL, "encoding_format": "base64"},
                    cast_to=httpx2.Response,
                )
            ).content
        finally:
            await client.close()
            await over_aiohttp.close()
    rows: list[dict[str, Any]] = []
    for (batch, name), taken in samples.items():
        rows.append(
            {
                "batch": batch,
                "path": name,
                "wall_us": round(percentile([w for w, _ in taken], 50) or 0.0, 1),
                "cpu_us": round(percentile([c for _, c in taken], 50) or 0.0, 1),
            }
        )
    for row in rows:
        base = next(r for r in rows if r["batch"] == row["batch"] and r["path"] == "sdk float")
        row["cpu_vs_sdk_float"] = (
            round(row["cpu_us"] / base["cpu_us"], 3) if base["cpu_us"] else None
        )
    return {
        "dimensions": DIMENSIONS,
        "calls_per_path": calls,
        "rounds": rounds,
        "rows": rows,
        "decode_us": _decode_figures(body, 2000),
    }


def report(figures: dict[str, Any]) -> None:
    print_table(
        f"client cost per embeddings call, {figures['dimensions']} dimensions (median of "
        f"{figures['rounds']} x {figures['calls_per_path']} calls)",
        ["batch", "path", "wall us", "client cpu us", "cpu / sdk float"],
        [
            [r["batch"], r["path"], r["wall_us"], r["cpu_us"], r["cpu_vs_sdk_float"]]
            for r in figures["rows"]
        ],
    )
    print_table(
        "decoding one 1536-float vector (us)",
        ["path", "us"],
        list(figures["decode_us"].items()),
    )


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "embeddings benchmark")
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args()
    quick = bool(args.quick)
    host = machine()
    figures = asyncio.run(run(args.calls or (20 if quick else 300), 1 if quick else 3))
    report(figures)
    finish("embeddings", figures, quick=quick, as_json=bool(args.json), host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
