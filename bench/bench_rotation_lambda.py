"""The rotation function's four steps under MCP load: requests, failures, time per step.

Against the local stack (PostgreSQL, moto, the fake OpenAI endpoint), one `kb-mcp serve
--transport http` runs with a 1 s secrets TTL while MCP clients call `kb_add`/`kb_search`
(the drill's workload). Each rotation is what Secrets Manager does with a rotation
function: a fresh ClientRequestToken, then `createSecret`, `setSecret`, `testSecret`,
`finishSecret` through `kb_mcp.ops.rotation.lambda_handler.handle`, each step invoked
twice (a retry must be harmless), the alternating users taking turns. After each
rotation, the time until `/readyz` names the new version in service. Reported: requests,
failed requests (must be 0), seconds per step, pickup.

    python -m bench.bench_rotation_lambda [--quick] [--json] [--rotations 4] [--clients 4]

Exits 1 when any request failed or a rotation did not reach the server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

import httpx2

from bench import bench_parser, finish, machine, percentile, print_table
from bench._procs import free_port, spawn
from bench._stack import BenchStack, open_stack
from kb_mcp.observability.logging import configure_logging
from kb_mcp.ops.drill.load import DrillStats, Workload, run_worker
from kb_mcp.ops.rotation.lambda_handler import EVENT_STEPS, handle

PICKUP_TIMEOUT_S = 30.0


async def _in_service(http: httpx2.AsyncClient, port: int, secret: str) -> str | None:
    try:
        data = (await http.get(f"http://127.0.0.1:{port}/readyz")).json()
    except (httpx2.HTTPError, ValueError):
        return None
    for entry in data.get("secrets", []):
        if entry.get("name") == secret:
            return str(entry.get("in_service_version_id"))
    return None


async def _pickup(http: httpx2.AsyncClient, port: int, secret: str, version: str) -> float | None:
    """Seconds until /readyz names `version` in service (another process: polled)."""
    began = time.monotonic()
    while time.monotonic() - began < PICKUP_TIMEOUT_S:
        if await _in_service(http, port, secret) == version:
            return round(time.monotonic() - began, 3)
        await asyncio.sleep(0.05)
    return None


async def run(rotations: int, clients: int, warmup_s: float) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    async with open_stack() as stack:
        settings = stack.settings()
        await stack.client.create_secret(
            Name="kb-mcp/prod/postgres-master",
            SecretString=_master_json(stack),
        )
        port = free_port()
        argv = [
            sys.executable,
            *("-m", "kb_mcp", "serve", "--transport", "http", "--host", "127.0.0.1"),
            *("--port", str(port)),
        ]
        env = stack.environment(SECRETS_CACHE_TTL_SECONDS="1", KB_MCP_LOG_LEVEL="WARNING")
        steps: dict[str, list[float]] = {step: [] for step in EVENT_STEPS}
        retries: dict[str, list[float]] = {step: [] for step in EVENT_STEPS}
        pickups: list[float | None] = []
        users: list[str] = []
        stats, stop = DrillStats(), asyncio.Event()
        async with spawn("serve", argv, env, port, "/readyz"), httpx2.AsyncClient() as http:
            url = f"http://127.0.0.1:{port}/mcp"
            async with asyncio.TaskGroup() as tasks:
                workers = [
                    tasks.create_task(
                        run_worker(url, None, Workload(), stats, stop, worker=i, seed=i)
                    )
                    for i in range(clients)
                ]
                await asyncio.sleep(warmup_s)
                for _ in range(rotations):
                    token = str(uuid.uuid4())
                    for step in EVENT_STEPS:
                        event = {
                            "SecretId": stack.postgres_secret,
                            "ClientRequestToken": token,
                            "Step": step,
                        }
                        steps[step].append((await handle(settings, event)).duration_s)
                        retries[step].append((await handle(settings, event)).duration_s)
                    pickups.append(await _pickup(http, port, stack.postgres_secret, token))
                    value = await stack.client.get_secret_value(
                        SecretId=stack.postgres_secret, VersionStage="AWSCURRENT"
                    )
                    users.append(str(json.loads(value["SecretString"])["username"]))
                await asyncio.sleep(warmup_s)
                stop.set()
                await asyncio.gather(*workers)
    return {
        "rotations": rotations,
        "clients": clients,
        "requests": stats.total,
        "failed_requests": len(stats.failures),
        "errors": stats.errors_by_kind(),
        "users_in_turn": users,
        "step_s": {
            step: {"p50": percentile(values, 50), "max": max(values)}
            for step, values in steps.items()
        },
        "retry_s": {
            step: {"p50": percentile(values, 50), "max": max(values)}
            for step, values in retries.items()
        },
        "pickup_s": pickups,
    }


def _master_json(stack: BenchStack) -> str:
    """The master secret: the cluster's superuser (CREATEROLE), as kb-mcp dev seeds it."""
    return json.dumps(
        {
            "username": stack.pg.superuser,
            "password": stack.pg.superuser_password,
            "host": stack.pg.host,
            "port": stack.pg.port,
            "database": "postgres",
        }
    )


def report(figures: dict[str, Any]) -> None:
    print_table(
        "rotation function under load (each step invoked twice: first run, then a retry)",
        ("step", "first p50 s", "first max s", "retry p50 s", "retry max s"),
        [
            (
                step,
                figures["step_s"][step]["p50"],
                figures["step_s"][step]["max"],
                figures["retry_s"][step]["p50"],
                figures["retry_s"][step]["max"],
            )
            for step in EVENT_STEPS
        ],
    )
    print(
        f"\nrotations {figures['rotations']}, users in turn {figures['users_in_turn']}; "
        f"requests {figures['requests']}, failed {figures['failed_requests']}; "
        f"pickup by /readyz {figures['pickup_s']} s"
    )
    for error, count in figures["errors"].items():
        print(f"  {count} x {error}")


def main() -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--rotations", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    rotations, clients, warmup = (1, 2, 0.5) if args.quick else (args.rotations, args.clients, 2.0)
    host = machine()
    figures = asyncio.run(run(rotations, clients, warmup))
    report(figures)
    finish("bench_rotation_lambda", figures, quick=args.quick, as_json=args.json, host=host)
    reached = all(p is not None for p in figures["pickup_s"])
    return 0 if figures["failed_requests"] == 0 and figures["requests"] > 0 and reached else 1


if __name__ == "__main__":
    sys.exit(main())
