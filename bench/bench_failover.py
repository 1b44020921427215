"""Replica-region failover under load: requests failed while the primary region was down,
and how long reads took to go back to it once it answered again.

Two moto servers on 127.0.0.1 stand for two regions (us-east-1 primary, us-west-2 replica)
holding the same secrets with the same VersionIds, as Secrets Manager replication does.
16 workers make requests against a provider built from settings exactly as the server
builds it (`build_aws_provider`): each request reads both secrets the way the runtime does
(`get_secret_json`, cached for SECRETS_CACHE_TTL_SECONDS=1), and one in 25 is a forced
refresh (what an authentication failure triggers), which raises when no region answers.
The primary's server is stopped for the outage (30 s; 3 s with --quick), then started again
on the same port. The run is made twice, side by side: without replica regions (the
baseline) and with `KB_MCP_SECRETS_REPLICA_REGIONS=us-west-2`.

Figures: requests and failed requests during the outage, per mode; time from the kill to
the first read served by the replica; time from the primary's return to the first read
served by it again (bounded by KB_MCP_SECRETS_FAILBACK_INTERVAL_S, 30 s by default, 1 s
with --quick, plus the TTL).

    python -m bench.bench_failover [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aioboto3
from secretswap.metrics import MetricsRegistry

from bench import bench_parser, finish, machine, print_table
from kb_mcp.config import load_settings
from kb_mcp.devstack.moto_server import MotoSecretsServer
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.factory import build_aws_provider
from kb_mcp.secrets.schemas import OpenAIKeySecret, PostgresCredentials

PRIMARY, REPLICA = "us-east-1", "us-west-2"
KEY_NAME = "kb-mcp/prod/openai-api-key"
PG_NAME = "kb-mcp/prod/postgres-credentials"
WORKERS = 16
FORCED_EVERY = 25
PACE_S = 0.005


@dataclass
class Phase:
    """What the workers saw in one mode."""

    requests: int = 0
    failed: int = 0
    requests_in_outage: int = 0
    failed_in_outage: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    killed_at: float | None = None
    revived_at: float | None = None
    first_replica_read: float | None = None
    first_primary_read_after_return: float | None = None
    back: asyncio.Event = field(default_factory=asyncio.Event)

    def saw(self, region: str | None, now: float) -> None:
        if region == REPLICA and self.first_replica_read is None:
            self.first_replica_read = now
        if (
            region == PRIMARY
            and self.revived_at is not None
            and self.first_primary_read_after_return is None
        ):
            self.first_primary_read_after_return = now
            self.back.set()


async def _seed(servers: dict[str, MotoSecretsServer]) -> None:
    values = {
        KEY_NAME: "sk-bench-" + secrets.token_urlsafe(32),
        PG_NAME: json.dumps(
            {
                "username": "kb_bench",
                "password": "pw-" + secrets.token_urlsafe(24),
                "host": "127.0.0.1",
                "port": 5432,
                "database": "kb",
            }
        ),
    }
    session = aioboto3.Session()
    for name, value in values.items():
        version = str(uuid.uuid4())
        for region, server in servers.items():
            async with session.client(
                "secretsmanager", region_name=region, endpoint_url=server.endpoint_url
            ) as client:
                await client.create_secret(
                    Name=name, SecretString=value, ClientRequestToken=version
                )


async def _worker(
    provider: AwsSecretsManagerProvider, phase: Phase, stop: asyncio.Event, seed: int
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        in_outage = phase.killed_at is not None and phase.revived_at is None
        try:
            if rng.randrange(FORCED_EVERY) == 0:
                version = await provider.refresh(rng.choice((KEY_NAME, PG_NAME)))
                phase.saw(version.region, time.monotonic())
            else:
                key = await provider.get_secret_json(KEY_NAME, OpenAIKeySecret)
                await provider.get_secret_json(PG_NAME, PostgresCredentials)
                phase.saw(key.version.region, time.monotonic())
        except Exception as exc:  # counted: this is what the benchmark measures
            phase.failed += 1
            phase.failed_in_outage += in_outage
            name = type(exc).__name__
            phase.errors[name] = phase.errors.get(name, 0) + 1
        phase.requests += 1
        phase.requests_in_outage += in_outage
        await asyncio.sleep(PACE_S)


async def _run_phase(
    servers: dict[str, MotoSecretsServer], *, replicas: bool, outage_s: float, quick: bool
) -> Phase:
    overrides: dict[str, Any] = {
        "env": "production",
        "aws_region": PRIMARY,
        "aws_endpoint_url": servers[PRIMARY].endpoint_url,
        "cache_ttl_s": 1.0,
        "secrets_retry_budget_s": 1.0 if quick else 8.0,
        "secrets_failback_interval_s": 1.0 if quick else 30.0,
    }
    if replicas:
        overrides["secrets_replica_regions_list"] = REPLICA
        overrides["secrets_region_endpoints_list"] = f"{REPLICA}={servers[REPLICA].endpoint_url}"
    settings = load_settings(**overrides)
    phase = Phase()
    stop = asyncio.Event()
    async with build_aws_provider(settings, MetricsRegistry()) as provider:
        await provider.get_secret(KEY_NAME)
        async with asyncio.TaskGroup() as tasks:
            for seed in range(WORKERS):
                tasks.create_task(_worker(provider, phase, stop, seed))
            await asyncio.sleep(1.0)  # steady state before the outage
            await asyncio.to_thread(servers[PRIMARY].stop)
            phase.killed_at = time.monotonic()
            await asyncio.sleep(outage_s)
            await asyncio.to_thread(servers[PRIMARY].start)
            phase.revived_at = time.monotonic()
            wait_back_s = settings.secrets_failback_interval_s + settings.cache_ttl_s + 5.0
            with contextlib.suppress(TimeoutError):  # reported as no return ("-")
                await asyncio.wait_for(phase.back.wait(), wait_back_s)
            stop.set()
    return phase


def _since(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else round(later - earlier, 3)


async def _main(quick: bool) -> dict[str, Any]:
    outage_s = 3.0 if quick else 30.0
    servers = {PRIMARY: MotoSecretsServer(), REPLICA: MotoSecretsServer()}
    for server in servers.values():
        await asyncio.to_thread(server.start)
    try:
        await _seed(servers)
        baseline = await _run_phase(servers, replicas=False, outage_s=outage_s, quick=quick)
        failover = await _run_phase(servers, replicas=True, outage_s=outage_s, quick=quick)
    finally:
        for server in servers.values():
            await asyncio.to_thread(server.stop)
    rows = []
    figures: dict[str, Any] = {"outage_s": outage_s, "workers": WORKERS}
    for label, phase in (("primary only", baseline), ("with replica", failover)):
        rows.append(
            [
                label,
                phase.requests,
                phase.requests_in_outage,
                phase.failed_in_outage,
                phase.failed,
                _since(phase.first_replica_read, phase.killed_at),
                _since(phase.first_primary_read_after_return, phase.revived_at),
            ]
        )
        key = "baseline" if phase is baseline else "failover"
        figures[key] = {
            "requests": phase.requests,
            "requests_in_outage": phase.requests_in_outage,
            "failed_in_outage": phase.failed_in_outage,
            "failed": phase.failed,
            "errors": phase.errors,
            "failover_after_s": _since(phase.first_replica_read, phase.killed_at),
            "back_to_primary_after_s": _since(
                phase.first_primary_read_after_return, phase.revived_at
            ),
        }
    print_table(
        f"primary region down for {outage_s:.0f} s under {WORKERS} workers",
        [
            "mode",
            "requests",
            "in outage",
            "failed in outage",
            "failed",
            "kill -> replica read (s)",
            "return -> primary read (s)",
        ],
        rows,
    )
    return figures


def main() -> None:
    args = bench_parser(__doc__.splitlines()[0]).parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "BENCHKEY" + secrets.token_hex(6).upper())
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-" + secrets.token_hex(16))
    host = machine()
    figures = asyncio.run(_main(args.quick))
    finish("bench_failover", figures, quick=args.quick, as_json=args.json, host=host)


if __name__ == "__main__":
    main()
