"""Cost of a cached secret read: kb-mcp's cache against `aws-secretsmanager-caching`.

Measures, in one run and one process, nanoseconds per read on the cache-hit path of:

  (a) `SecretCache.get`                             our TTL cache
  (b) `AwsSecretsManagerProvider.get_secret`        the provider's read (cache + nothing)
      `AwsSecretsManagerProvider.get_secret_json`   the same, parsed into a model (memoized)
  (c) `aws_secretsmanager_caching.SecretCache.get_secret_string`   AWS's client-side cache
  (d) a bare `async def` dict lookup                the floor for an awaited read

A moto server on 127.0.0.1 (port 0) is started by the bench; every cache is warmed first,
so no timed read reaches the network (checked: the figures are refused if one did). Each
figure is the median over several repeats of `time.perf_counter_ns()` around many
iterations, with the garbage collector paused as `timeit` does; repeats run round-robin
across the paths so background load hits them alike. Nothing is asserted.

    python -m bench.bench_cache            # full run (about a minute)
    python -m bench.bench_cache --quick    # CI: seconds
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aioboto3
import botocore.session
from aws_secretsmanager_caching import SecretCache as ReferenceCache
from aws_secretsmanager_caching import SecretCacheConfig
from moto.server import ThreadedMotoServer

from bench import (
    BENCH_KEY_NAME,
    BENCH_PG_NAME,
    bench_parser,
    finish,
    machine,
    print_table,
    seed_bench_secrets,
)
from kb_mcp.observability.logging import configure_logging
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.schemas import OpenAIKeySecret, PostgresCredentials

REGION = "us-east-1"
KEY_NAME = BENCH_KEY_NAME
PG_NAME = BENCH_PG_NAME


@dataclass(frozen=True)
class Plan:
    """How long to measure: iterations per repeat for fast and slow paths, and repeats."""

    fast_iterations: int
    slow_iterations: int
    repeats: int


FULL = Plan(fast_iterations=200_000, slow_iterations=20_000, repeats=7)
QUICK = Plan(fast_iterations=10_000, slow_iterations=1_000, repeats=3)


@dataclass(frozen=True)
class Figure:
    """One measured path: median and spread of ns per read over the repeats."""

    label: str
    median_ns: float
    min_ns: float
    max_ns: float
    iterations: int


@dataclass(frozen=True)
class Path:
    """A read to time: awaited (ours, the floor) or called (the sync reference)."""

    label: str
    read: Callable[[], Any]
    iterations: int
    awaited: bool = True


async def _one_repeat(path: Path) -> float:
    """ns per read over `path.iterations` reads, garbage collector paused as `timeit` does."""
    read, iterations = path.read, path.iterations
    gc.collect()
    gc.disable()
    try:
        if path.awaited:
            start = time.perf_counter_ns()
            for _ in range(iterations):
                await read()
            elapsed = time.perf_counter_ns() - start
        else:
            start = time.perf_counter_ns()
            for _ in range(iterations):
                read()
            elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / iterations


async def _measure(paths: list[Path], repeats: int) -> list[Figure]:
    """Warm every path, then run the repeats round-robin so each path sees the same load."""
    for path in paths:
        warm = Path(path.label, path.read, min(path.iterations, 100), path.awaited)
        await _one_repeat(warm)
    samples: dict[str, list[float]] = {path.label: [] for path in paths}
    for _ in range(repeats):
        for path in paths:
            samples[path.label].append(await _one_repeat(path))
    return [
        Figure(
            path.label,
            statistics.median(samples[path.label]),
            min(samples[path.label]),
            max(samples[path.label]),
            path.iterations,
        )
        for path in paths
    ]


def _credentials() -> dict[str, str]:
    """Fake credentials built at run time (moto accepts any)."""
    return {
        "aws_access_key_id": "BENCH" + secrets.token_hex(6).upper(),
        "aws_secret_access_key": "bench-" + secrets.token_hex(16),
        "region_name": REGION,
    }


def _reference_client(endpoint: str, credentials: dict[str, str]) -> Any:
    session = botocore.session.get_session()
    return session.create_client("secretsmanager", endpoint_url=endpoint, **credentials)


async def _measure_all(endpoint: str, credentials: dict[str, str], plan: Plan) -> list[Figure]:
    table = {KEY_NAME: "value"}

    async def dict_lookup() -> str:
        return table[KEY_NAME]

    reference_client = _reference_client(endpoint, credentials)
    sent: list[str] = []
    reference_client.meta.events.register(
        "before-send.secrets-manager", lambda event_name, **_: sent.append(event_name)
    )
    reference = ReferenceCache(config=SecretCacheConfig(), client=reference_client)
    reference.get_secret_string(KEY_NAME)  # warm: DescribeSecret + GetSecretValue
    provider = AwsSecretsManagerProvider(
        region=REGION,
        endpoint_url=endpoint,
        cache_ttl_s=3600,
        session=aioboto3.Session(**credentials),
    )
    async with provider:
        await provider.get_secret_json(KEY_NAME, OpenAIKeySecret)
        await provider.get_secret_json(PG_NAME, PostgresCredentials)
        calls_before, sent_before = provider.metrics.total("SecretsApiCalls"), len(sent)
        cache = provider.cache
        fast = plan.fast_iterations
        paths = [
            Path("(d) bare async dict lookup (floor)", dict_lookup, fast),
            Path("(a) kb-mcp SecretCache.get", lambda: cache.get(KEY_NAME), fast),
            Path("(b) kb-mcp provider.get_secret", lambda: provider.get_secret(KEY_NAME), fast),
            Path(
                "(b) kb-mcp provider.get_secret_json",
                lambda: provider.get_secret_json(PG_NAME, PostgresCredentials),
                fast,
            ),
            Path(
                "(c) aws-secretsmanager-caching get_secret_string",
                lambda: reference.get_secret_string(KEY_NAME),
                plan.slow_iterations,
                awaited=False,
            ),
        ]
        figures = await _measure(paths, plan.repeats)
        if provider.metrics.total("SecretsApiCalls") != calls_before or len(sent) != sent_before:
            raise RuntimeError("a timed read reached the network: the figures are invalid")
    return figures


def _report(figures: list[Figure], plan: Plan, quick: bool, as_json: bool, host: Any) -> None:
    reference = next(f for f in figures if f.label.startswith("(c)")).median_ns
    floor = next(f for f in figures if f.label.startswith("(d)")).median_ns
    print_table(
        f"cached secret read, ns per read (median of {plan.repeats} repeats, round-robin)",
        ["path", "median ns", "min ns", "max ns", "reads/repeat", "reference/this", "x floor"],
        [
            [
                f.label,
                round(f.median_ns),
                round(f.min_ns),
                round(f.max_ns),
                f.iterations,
                round(reference / f.median_ns, 1),
                round(f.median_ns / floor, 1),
            ]
            for f in figures
        ],
    )
    finish(
        "bench_cache",
        {
            "ns_per_read": {
                f.label: {
                    "median": round(f.median_ns, 1),
                    "min": round(f.min_ns, 1),
                    "max": round(f.max_ns, 1),
                    "iterations": f.iterations,
                }
                for f in figures
            },
            "reference_over": {
                f.label: round(reference / f.median_ns, 1)
                for f in figures
                if not f.label.startswith("(c)")
            },
            "repeats": plan.repeats,
        },
        quick=quick,
        as_json=as_json,
        host=host,
    )


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "bench_cache")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    host = machine()
    configure_logging(json_lines=False, level="WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    credentials = _credentials()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        endpoint = f"http://127.0.0.1:{port}"
        seed_bench_secrets(_reference_client(endpoint, credentials))
        figures = asyncio.run(_measure_all(endpoint, credentials, plan))
    finally:
        server.stop()
    _report(figures, plan, args.quick, args.json, host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
