"""Secrets Manager API calls: kb-mcp against `aws-secretsmanager-caching`.

Two figures, both counted at the wire (botocore's `before-send` event fires once per HTTP
request actually sent to the moto server this bench starts on 127.0.0.1, port 0):

1. Calls per instance per day, both secrets, at each library's default refresh policy.
   A simulated day on a fake clock: reads at `--rate` per second per secret. kb-mcp's
   cache takes a `clock`; the reference reads `datetime.now()` in its items module, which
   the bench points at the same fake clock for the duration of the run. Rows:
     - kb-mcp read-through (every read goes through the provider's cache, TTL 300 s);
     - kb-mcp runtime (what `kb-mcp serve` does: request paths hold built clients and
       never read the cache; the refresher re-reads each secret every TTL +/- 10 %);
     - the reference at its default (`secret_refresh_interval` 3600 s, refreshed at a
       random point in [1800, 3600] s: DescribeSecret each time, GetSecretValue only
       for a VersionId it has not cached), and at a 300 s interval for comparison.
2. 1,000 concurrent cold readers per secret (both secrets at once): kb-mcp with asyncio
   tasks against the reference with a 64-thread pool.

    python -m bench.bench_api_calls            # full: a day, reads at 1/s per secret
    python -m bench.bench_api_calls --quick    # CI: 2 simulated hours, scaled to a day
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import aioboto3
import botocore.session
from aws_secretsmanager_caching import SecretCache as ReferenceCache
from aws_secretsmanager_caching import SecretCacheConfig
from aws_secretsmanager_caching.cache import items as reference_items
from moto.server import ThreadedMotoServer
from secretswap import Refresher

from bench import (
    BENCH_KEY_NAME,
    BENCH_PG_NAME,
    bench_parser,
    finish,
    machine,
    print_table,
    seed_bench_secrets,
)
from kb_mcp.config import Settings
from kb_mcp.observability.logging import configure_logging
from kb_mcp.secrets.aws import AwsSecretsManagerProvider

REGION = "us-east-1"
KEY_NAME = BENCH_KEY_NAME
PG_NAME = BENCH_PG_NAME
NAMES = (KEY_NAME, PG_NAME)
DAY_S = 86_400.0
WARMUP_NAME = "kb-mcp/bench/warm-up"
DEFAULT_TTL_S = float(Settings.model_fields["cache_ttl_s"].default)
DEFAULT_JITTER = float(Settings.model_fields["refresh_jitter_ratio"].default)
REFERENCE_INTERVAL_S = int(SecretCacheConfig.OPTION_DEFAULTS["secret_refresh_interval"])


class FakeClock:
    """Seconds since the start of the simulated day, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class WireCounter:
    """Counts HTTP requests sent to Secrets Manager, per operation (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_operation: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.by_operation[event_name.rsplit(".", 1)[-1]] += 1

    def total(self) -> int:
        with self._lock:
            return self.by_operation.total()

    def describe(self) -> str:
        with self._lock:
            return ", ".join(f"{op} {n}" for op, n in sorted(self.by_operation.items()))


@dataclass(frozen=True)
class Row:
    """One simulated policy and what it cost at the wire."""

    label: str
    calls: int
    detail: str
    seconds: float
    per_day: float | None = None


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": "BENCH" + secrets.token_hex(6).upper(),
        "aws_secret_access_key": "bench-" + secrets.token_hex(16),
        "region_name": REGION,
    }


def _reference_client(endpoint: str, credentials: dict[str, str], counter: WireCounter) -> Any:
    client = botocore.session.get_session().create_client(
        "secretsmanager", endpoint_url=endpoint, **credentials
    )
    client.meta.events.register("before-send.secrets-manager", counter)
    return client


def _provider(
    endpoint: str, credentials: dict[str, str], counter: WireCounter, clock: Callable[[], float]
) -> AwsSecretsManagerProvider:
    session = aioboto3.Session(**credentials)
    session.events.register("before-send.secrets-manager", counter)
    return AwsSecretsManagerProvider(
        region=REGION,
        endpoint_url=endpoint,
        cache_ttl_s=DEFAULT_TTL_S,
        session=session,
        clock=clock,
    )


@contextmanager
def _reference_time(clock: FakeClock) -> Iterator[None]:
    """Point the reference's `datetime.now()` at the fake clock while the block runs."""
    epoch = datetime(2025, 1, 1, tzinfo=UTC)

    class SimulatedDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> SimulatedDatetime:
            moment = epoch + timedelta(seconds=clock.now)
            return cls.fromtimestamp(moment.timestamp(), tz)

    original = reference_items.datetime
    reference_items.datetime = SimulatedDatetime
    try:
        yield
    finally:
        reference_items.datetime = original


# -- a day --------------------------------------------------------------------------------


def _per_day(boot: int, total: int, span_s: float) -> float:
    """Calls per day: the cold start once, the steady state scaled from the simulated span."""
    return boot + (total - boot) * DAY_S / span_s


async def _day_ours_read_through(
    endpoint: str, creds: dict[str, str], rate: float, span_s: float
) -> Row:
    clock, counter = FakeClock(), WireCounter()
    started = time.perf_counter()
    async with _provider(endpoint, creds, counter, clock) as provider:
        step = 1.0 / rate
        boot = -1
        while clock.now < span_s:
            for name in NAMES:
                await provider.get_secret(name)
            boot = counter.total() if boot < 0 else boot
            clock.now += step
    return Row(
        f"kb-mcp read-through, TTL {DEFAULT_TTL_S:.0f} s",
        counter.total(),
        counter.describe(),
        time.perf_counter() - started,
        _per_day(boot, counter.total(), span_s),
    )


async def _day_ours_runtime(endpoint: str, creds: dict[str, str], seed: int, span_s: float) -> Row:
    clock, counter = FakeClock(), WireCounter()
    started = time.perf_counter()
    async with _provider(endpoint, creds, counter, clock) as provider:
        for name in NAMES:  # boot
            await provider.get_secret(name)
        boot = counter.total()
        refresher = Refresher(
            provider,
            interval_s=DEFAULT_TTL_S,
            jitter_ratio=DEFAULT_JITTER,
            rng=random.Random(seed),
        )
        clock.now = refresher.next_delay()
        while clock.now < span_s:
            for name in NAMES:
                await provider.refresh(name)
            clock.now += refresher.next_delay()
    return Row(
        f"kb-mcp runtime, refresher every {DEFAULT_TTL_S:.0f} s +/- {DEFAULT_JITTER:.0%}",
        counter.total(),
        counter.describe(),
        time.perf_counter() - started,
        _per_day(boot, counter.total(), span_s),
    )


def _day_reference(
    endpoint: str, creds: dict[str, str], rate: float, interval_s: int, seed: int, span_s: float
) -> Row:
    clock, counter = FakeClock(), WireCounter()
    random.seed(seed)  # the reference draws its refresh time from the global `random`
    started = time.perf_counter()
    with _reference_time(clock):
        config = SecretCacheConfig(secret_refresh_interval=interval_s)
        cache = ReferenceCache(config=config, client=_reference_client(endpoint, creds, counter))
        step = 1.0 / rate
        boot = -1
        while clock.now < span_s:
            for name in NAMES:
                cache.get_secret_string(name)
            boot = counter.total() if boot < 0 else boot
            clock.now += step
    default = " (default)" if interval_s == REFERENCE_INTERVAL_S else ""
    return Row(
        f"aws-secretsmanager-caching, interval {interval_s} s{default}",
        counter.total(),
        counter.describe(),
        time.perf_counter() - started,
        _per_day(boot, counter.total(), span_s),
    )


# -- 1,000 concurrent cold readers ------------------------------------------------------


async def _cold_ours(endpoint: str, creds: dict[str, str], readers: int) -> Row:
    counter = WireCounter()
    async with _provider(endpoint, creds, counter, time.monotonic) as provider:
        await provider.get_secret(WARMUP_NAME)  # first-call costs (endpoint, signer) paid here
        counter.by_operation.clear()
        started = time.perf_counter()
        await asyncio.gather(*(provider.get_secret(n) for n in NAMES for _ in range(readers)))
        elapsed = time.perf_counter() - started
    return Row("kb-mcp, asyncio tasks", counter.total(), counter.describe(), elapsed)


def _cold_reference(endpoint: str, creds: dict[str, str], readers: int, workers: int) -> Row:
    counter = WireCounter()
    cache = ReferenceCache(
        config=SecretCacheConfig(), client=_reference_client(endpoint, creds, counter)
    )
    cache.get_secret_string(WARMUP_NAME)  # first-call costs paid here, as for kb-mcp
    counter.by_operation.clear()
    jobs = [name for name in NAMES for _ in range(readers)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(cache.get_secret_string, jobs))
    elapsed = time.perf_counter() - started
    return Row(
        f"aws-secretsmanager-caching, {workers} threads",
        counter.total(),
        counter.describe(),
        elapsed,
    )


# -- main -------------------------------------------------------------------------------------


def _seed(endpoint: str, creds: dict[str, str]) -> None:
    client = _reference_client(endpoint, creds, WireCounter())
    client.create_secret(Name=WARMUP_NAME, SecretString="warm-up-" + secrets.token_hex(8))
    seed_bench_secrets(client)


def _table(title: str, rows: list[Row], per_day: bool) -> None:
    headers = ["policy", "calls", *(["per day"] if per_day else []), "by operation", "seconds"]
    print_table(
        title,
        headers,
        [
            [
                row.label,
                row.calls,
                *([round(row.per_day or 0)] if per_day else []),
                row.detail,
                round(row.seconds, 2),
            ]
            for row in rows
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "bench_api_calls")
    parser.add_argument("--rate", type=float, help="reads/s per secret (default 1, quick 0.2)")
    parser.add_argument("--hours", type=float, help="simulated span (default 24, quick 2)")
    parser.add_argument("--readers", type=int, default=1000, help="cold readers per secret")
    parser.add_argument("--workers", type=int, default=64, help="reference thread pool size")
    parser.add_argument("--seed", type=int, default=7, help="seed for the jittered schedules")
    args = parser.parse_args(argv)
    rate: float = args.rate or (0.2 if args.quick else 1.0)
    span_s = 3600.0 * (args.hours or (2.0 if args.quick else 24.0))
    host = machine()
    configure_logging(json_lines=False, level="WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    creds = _credentials()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        endpoint = f"http://127.0.0.1:{port}"
        _seed(endpoint, creds)
        day = [
            asyncio.run(_day_ours_read_through(endpoint, creds, rate, span_s)),
            asyncio.run(_day_ours_runtime(endpoint, creds, args.seed, span_s)),
            _day_reference(endpoint, creds, rate, REFERENCE_INTERVAL_S, args.seed, span_s),
            _day_reference(endpoint, creds, rate, int(DEFAULT_TTL_S), args.seed, span_s),
        ]
        cold = [
            asyncio.run(_cold_ours(endpoint, creds, args.readers)),
            _cold_reference(endpoint, creds, args.readers, args.workers),
        ]
    finally:
        server.stop()
    _table(
        f"API calls per instance, both secrets, reads at {rate:g}/s per secret over "
        f"{span_s / 3600:g} simulated hours (per day: cold start once + steady state scaled)",
        day,
        per_day=True,
    )
    _table(
        f"{args.readers} concurrent cold readers per secret, {len(NAMES)} secrets at once",
        cold,
        per_day=False,
    )
    finish(
        "bench_api_calls",
        {
            "rate_per_s": rate,
            "simulated_hours": span_s / 3600,
            "day": {
                r.label: {"calls": r.calls, "per_day": r.per_day, "by_operation": r.detail}
                for r in day
            },
            "cold_readers_per_secret": args.readers,
            "cold": {
                r.label: {"calls": r.calls, "by_operation": r.detail, "seconds": r.seconds}
                for r in cold
            },
        },
        quick=args.quick,
        as_json=args.json,
        host=host,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
