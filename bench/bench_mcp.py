"""The MCP request path against the SDK's own floor, with the official client over HTTP.

Starts, each in its own process: the local stack (PostgreSQL, moto; `bench._stack`), the
product's local embeddings endpoint (`python -m kb_mcp.devstack.embeddings_server`), and
for each HTTP stack measured a floor server (`bench._floor`: a trivial `kb_search`-shaped
tool on the same SDK and transport settings) and a real `kb-mcp serve --transport http`
(production settings, 1536 dimensions, seeded with documents through `kb_add`). The HTTP
stacks: `uvloop+h11` (what `kb-mcp serve` runs when uvloop is installed) and `asyncio+h11`
(the same code with uvloop made unimportable: the fallback). Both parse HTTP with h11: its
incomplete-event cap is the request-head limit of `kb_mcp.server.limits`.

The same MCP client (`mcp.Client`, streamable HTTP, one session per simulated client)
then drives, at 1, 16 and 64 concurrent clients, the floor, `kb_search` (a different
query every call, so the query cache misses) and `kb_add` (one chunk, different every
call; `--targets` adds `kb_search_repeat`, 20 queries asked over and over, which the
query-embedding cache answers), phase after phase, in rounds in which the order is
shuffled, so background load hits each alike. Every phase meets the same table: after a
`kb_add` phase the documents it added are deleted and the tables vacuumed and analyzed
(as once after seeding), so a search's cost does not depend on how many writes the
command happened to run before it. It prints req/s, p50/p99, errors and the
ratio to the floor of the same HTTP stack at the same concurrency, the client
process's CPU share (on 2 cores the client shares the machine with the servers: figures
are for comparing side by side), and where a request's CPU went: milliseconds per request
of the client, the server driven, the embeddings endpoint and PostgreSQL's client
backends, read from `/proc` around each phase's calls (`bench/_cpu.py`; Linux only).
Readiness is a poll of `/readyz`; ports are picked free on 127.0.0.1 before a server is
started (`kb-mcp serve` only reports its port 0 binding in a log line).

Before/after in one run: `--before-tree DIR` also starts, per HTTP stack, a `kb-mcp serve`
from another source tree (a checkout of an older commit; it starts first, on the same
database) and measures its `kb_search`, `kb_search_vector`, `kb_add` as targets named
`...@before`, against the same floor. Settings side by side: `--variant
KB_MCP_EMBEDDING_MAX_CALLS=0` also starts a `kb-mcp serve` of this tree with those
settings, its targets named `...@KB_MCP_EMBEDDING_MAX_CALLS=0`.

    python -m bench.bench_mcp [--quick] [--json] [--seconds 3] [--rounds 2]
        [--clients 1,16,64] [--stacks uvloop+h11,asyncio+h11]
        [--targets floor,kb_search,kb_add] [--documents 300] [--before-tree DIR]
        [--variant KB_MCP_NAME=VALUE[;KB_MCP_NAME=VALUE]] ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import Client

from bench import bench_parser, finish, latency_summary, machine, print_table
from bench._cpu import CpuMeter
from bench._procs import ROOT, free_port, python_argv, spawn
from bench._stack import APP, BenchStack, _postmaster_pid, open_stack
from kb_mcp.observability.logging import configure_logging

DIMENSIONS = 1536
STACKS = {
    "uvloop+h11": "",
    "asyncio+h11": "import sys; sys.modules['uvloop'] = None; ",
}
"""Python prologues: None in sys.modules makes `import uvloop` raise ImportError."""
KINDS = ("floor", "kb_search", "kb_add")
OPTIONAL_KINDS = ("kb_search_repeat", "kb_search_vector", "floor_minimal")
"""`kb_search_repeat`: 20 queries asked again and again (the query cache answers);
`kb_search_vector`: `kb_search` with `mode: vector` (the default is hybrid);
`floor_minimal`: the smaller floor of earlier runs (`python -m bench._floor --minimal`)."""
_RUN = secrets.token_hex(4)


# -- load --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One thing to drive: a tool on a server, with arguments made per call."""

    stack: str
    kind: str  # floor | kb_search | kb_add
    url: str
    tool: str
    arguments: Callable[[int], dict[str, Any]]
    meter: CpuMeter | None = None
    """The processes serving it (its server, the endpoint, PostgreSQL's backends)."""


_SEQUENCE = iter(range(10**12))


def search_arguments(_n: int) -> dict[str, Any]:
    return {"query": f"rotating database credentials {next(_SEQUENCE)} {_RUN}", "limit": 5}


_REPEATED = [f"how do I rotate credential number {n}" for n in range(20)]


def vector_search_arguments(n: int) -> dict[str, Any]:
    return {**search_arguments(n), "mode": "vector"}


def repeat_arguments(_n: int) -> dict[str, Any]:
    return {"query": _REPEATED[next(_SEQUENCE) % len(_REPEATED)], "limit": 5}


def add_arguments(_n: int) -> dict[str, Any]:
    n = next(_SEQUENCE)
    return {
        "title": f"note {n} of run {_RUN}",
        "content": f"Alternate between two login roles so the old password keeps working ({n}).",
        "tags": ["bench"],
    }


@dataclass
class Sample:
    """What one phase measured."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds of each group of `Target.meter` over the phase's calls."""
    removed: int = 0
    """Documents deleted after the phase to give the next one the seeded table."""


class _Gate:
    """Opens once `parties` tasks have arrived (a session that failed arrives too)."""

    def __init__(self, parties: int) -> None:
        self._left = parties
        self._open = asyncio.Event()

    def arrive(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._open.set()

    async def wait(self) -> None:
        await self._open.wait()


async def phase(target: Target, clients: int, seconds: float) -> Sample:
    """`clients` MCP sessions calling `target` back to back for `seconds`.

    Each session lives in its own task (the SDK's client must be left in the task that
    entered it). All open and make one warm call (the client fetches tools/list lazily);
    then each lists the tools, so no connection has sat idle near uvicorn's 5 s keep-alive
    limit when the clock starts. A failure outside a call (a session that could not open
    or close) is counted as an error; the other sessions go on.
    """
    sample = Sample()
    opened, warmed, start = _Gate(clients), _Gate(clients), asyncio.Event()
    deadline = 0.0
    stopped: list[tuple[float, float]] = []  # (wall, cpu) as each session's loop ends
    meter = target.meter
    cpu_before: dict[str, dict[int, float]] | None = None
    cpu_after: dict[str, dict[int, float]] | None = None
    running = clients  # sessions still calling; the last one to stop reads the meter

    def session_done() -> None:
        nonlocal running, cpu_after
        running -= 1
        if running == 0 and meter is not None and cpu_before is not None:
            cpu_after = meter.read()

    async def drive() -> None:
        gates = [opened, warmed]
        finished = False
        try:
            async with Client(f"{target.url}/mcp", cache=None) as session:
                await session.call_tool(target.tool, target.arguments(0))
                gates.pop(0).arrive()
                await opened.wait()
                await session.list_tools()  # cache=None: a real, cheap request
                gates.pop(0).arrive()
                await start.wait()
                while (now := time.perf_counter()) < deadline:
                    try:
                        result = await session.call_tool(target.tool, target.arguments(0))
                    except Exception:  # every failure counts, none stops the phase
                        sample.errors += 1
                        continue
                    if result.is_error:
                        sample.errors += 1
                    sample.latencies.append(time.perf_counter() - now)
                stopped.append((time.perf_counter(), time.process_time()))
                finished = True
                session_done()
        except Exception:  # a session lost outside a call: counted, the others go on
            sample.errors += 1
            for gate in gates:
                gate.arrive()
            if not finished:
                session_done()

    async with asyncio.TaskGroup() as tasks:
        for _ in range(clients):
            tasks.create_task(drive())
        await warmed.wait()
        if meter is not None:
            cpu_before = meter.read()
        cpu = time.process_time()
        began = time.perf_counter()
        deadline = began + seconds
        start.set()
    # Closing the sessions is not part of the phase: it ends with the last call.
    last_wall, last_cpu = max(stopped, default=(began, cpu))
    sample.seconds = last_wall - began
    sample.client_cpu_s = last_cpu - cpu
    if cpu_before is not None and cpu_after is not None:
        sample.cpu_s = CpuMeter.used(cpu_before, cpu_after)
    return sample


async def seed(url: str, documents: int) -> None:
    """`documents` documents through kb_add, a few writers at a time."""
    async with Client(f"{url}/mcp", cache=None) as client:
        for n in range(documents):
            result = await client.call_tool(
                "kb_add",
                {
                    "title": f"seed document {n}",
                    "content": " ".join(
                        f"passage {n} sentence {i} about credentials and rotation."
                        for i in range(8)
                    ),
                    "tags": ["seed", f"group-{n % 10}"],
                },
            )
            if result.is_error:
                raise RuntimeError(f"seeding failed: {result.content}")


async def restore_seed(stack: BenchStack) -> int:
    """Delete every document but the seeded ones; vacuum and analyze. The number deleted.

    Outside any phase's clock: the next phase searches the seeded table, its dead rows
    and index entries gone and its statistics fresh (autovacuum would otherwise analyze
    at a moment of its own choosing, and the planner's choice of plan with it)."""
    status = await stack.pg.execute(
        "DELETE FROM documents WHERE NOT tags @> ARRAY['seed']", database=APP
    )
    await stack.pg.execute("VACUUM (ANALYZE) documents, chunks", database=APP)
    return int(status.rpartition(" ")[2])


# -- the run -------------------------------------------------------------------------


def variant_environment(variant: str) -> dict[str, str]:
    """`KB_MCP_X=1;KB_MCP_Y=2` as environment variables (`--variant`)."""
    pairs = [part.partition("=") for part in variant.split(";") if part]
    if not pairs or any(not key.startswith("KB_MCP_") or not sep for key, sep, _ in pairs):
        raise ValueError(f"--variant {variant!r}: KB_MCP_NAME=VALUE[;KB_MCP_NAME=VALUE]")
    return {key: value for key, _, value in pairs}


def _product_targets(
    stack: str, url: str, suffix: str = "", meter: CpuMeter | None = None
) -> list[Target]:
    return [
        Target(stack, f"kb_search{suffix}", url, "kb_search", search_arguments, meter),
        Target(stack, f"kb_add{suffix}", url, "kb_add", add_arguments, meter),
        Target(stack, f"kb_search_repeat{suffix}", url, "kb_search", repeat_arguments, meter),
        Target(
            stack, f"kb_search_vector{suffix}", url, "kb_search", vector_search_arguments, meter
        ),
    ]


@contextlib.asynccontextmanager
async def servers(
    stack: BenchStack,
    stacks: list[str],
    seed_documents: int,
    before_tree: Path | None = None,
    *,
    minimal_floor: bool = False,
    variants: Sequence[str] = (),
) -> AsyncIterator[list[Target]]:
    """The embeddings endpoint, then a floor and a kb-mcp per HTTP stack; the targets."""
    key = stack.keys[0]
    async with contextlib.AsyncExitStack() as own:
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
        postmaster = _postmaster_pid(stack.pg)

        def meter(server_pid: int) -> CpuMeter:
            """The server's process, the endpoint's, and PostgreSQL's backends."""
            return CpuMeter(
                processes={"server": server_pid, "endpoint": embeddings.process.pid},
                # Client backends only: "postgres: user db 127.0.0.1(port) state".
                children_of={"postgres": (postmaster, "127.0.0.1(")} if postmaster else {},
            )

        env = stack.environment(
            OPENAI_BASE_URL=f"{embeddings.url}/v1",
            KB_MCP_EMBEDDING_DIMENSIONS=str(DIMENSIONS),
            PYTHONPATH=str(ROOT),
        )
        targets: list[Target] = []
        for name in stacks:
            prologue = STACKS[name]
            floor_port, kb_port = free_port(), free_port()
            if before_tree is not None:
                # First: the older tree must not meet migrations newer than its own.
                before_port = free_port()
                before = await own.enter_async_context(
                    spawn(
                        f"kb-mcp-before-{name}",
                        [
                            sys.executable,
                            "-c",
                            f"{prologue}import sys; from kb_mcp.cli import main; sys.exit(main())",
                            *("serve", "--transport", "http", "--port", str(before_port)),
                        ],
                        {**env, "PYTHONPATH": str(before_tree)},
                        before_port,
                        "/readyz",
                        cwd=before_tree,
                    )
                )
                targets += _product_targets(name, before.url, "@before", meter(before.process.pid))
            floor = await own.enter_async_context(
                spawn(
                    f"floor-{name}",
                    python_argv(prologue, "bench._floor:main", "--port", str(floor_port)),
                    env,
                    floor_port,
                    "/readyz",
                )
            )
            kb = await own.enter_async_context(
                spawn(
                    f"kb-mcp-{name}",
                    python_argv(
                        prologue,
                        "kb_mcp.cli:main",
                        *("serve", "--transport", "http", "--port", str(kb_port)),
                    ),
                    env,
                    kb_port,
                    "/readyz",
                )
            )
            for variant in variants:
                variant_port = free_port()
                server = await own.enter_async_context(
                    spawn(
                        f"kb-mcp-{name}-{variant}",
                        python_argv(
                            prologue,
                            "kb_mcp.cli:main",
                            *("serve", "--transport", "http", "--port", str(variant_port)),
                        ),
                        {**env, **variant_environment(variant)},
                        variant_port,
                        "/readyz",
                    )
                )
                targets += _product_targets(
                    name, server.url, f"@{variant}", meter(server.process.pid)
                )
            if minimal_floor:
                minimal_port = free_port()
                minimal = await own.enter_async_context(
                    spawn(
                        f"floor-minimal-{name}",
                        python_argv(
                            prologue, "bench._floor:main", "--port", str(minimal_port), "--minimal"
                        ),
                        env,
                        minimal_port,
                        "/readyz",
                    )
                )
                targets.append(
                    Target(
                        name,
                        "floor_minimal",
                        minimal.url,
                        "kb_search",
                        search_arguments,
                        meter(minimal.process.pid),
                    )
                )
            targets += [
                Target(
                    name,
                    "floor",
                    floor.url,
                    "kb_search",
                    search_arguments,
                    meter(floor.process.pid),
                ),
                *_product_targets(name, kb.url, meter=meter(kb.process.pid)),
            ]
        # One database behind both kb-mcp processes: seed it once.
        await seed(next(t.url for t in targets if t.kind == "kb_add"), seed_documents)
        yield targets


async def run(
    *,
    stacks: list[str],
    kinds: list[str],
    levels: list[int],
    seconds: float,
    rounds: int,
    seed_documents: int,
    before_tree: Path | None = None,
    variants: Sequence[str] = (),
) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    samples: dict[tuple[str, str, int], list[Sample]] = {}
    rng = random.Random(13)
    async with (
        open_stack() as stack,
        servers(
            stack,
            stacks,
            seed_documents,
            before_tree,
            minimal_floor="floor_minimal" in kinds,
            variants=variants,
        ) as targets,
    ):
        await restore_seed(stack)
        for _ in range(rounds):
            for clients in levels:
                order = [t for t in targets if t.kind in kinds]
                rng.shuffle(order)
                for target in order:
                    sample = await phase(target, clients, seconds)
                    samples.setdefault((target.stack, target.kind, clients), []).append(sample)
                    if target.tool == "kb_add":
                        sample.removed = await restore_seed(stack)
    rows: list[dict[str, Any]] = []
    for (name, kind, clients), taken in samples.items():
        latencies = [x for s in taken for x in s.latencies]
        wall = sum(s.seconds for s in taken)
        rows.append(
            {
                "stack": name,
                "target": kind,
                "clients": clients,
                "requests": len(latencies),
                "errors": sum(s.errors for s in taken),
                "req_per_s": round(len(latencies) / wall, 1) if wall else 0.0,
                "latency": latency_summary(latencies),
                "client_cpu_share": (
                    round(sum(s.client_cpu_s for s in taken) / wall, 2) if wall else None
                ),
                "cpu_ms_per_request": _cpu_per_request(taken, len(latencies)),
                "documents_removed_after": sum(s.removed for s in taken),
            }
        )
    floors = {(r["stack"], r["clients"]): r["req_per_s"] for r in rows if r["target"] == "floor"}
    for row in rows:
        floor = floors.get((row["stack"], row["clients"])) or 0.0
        row["ratio_to_floor"] = round(row["req_per_s"] / floor, 3) if floor else None
    rows.sort(key=lambda r: (stacks.index(r["stack"]), r["clients"], r["target"]))
    return {
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "seed_documents": seed_documents,
        "dimensions": DIMENSIONS,
        "rows": rows,
        "errors": sum(r["errors"] for r in rows),
    }


CPU_GROUPS = ("client", "server", "endpoint", "postgres")
"""CPU per request is reported for the client (this process) and `Target.meter`'s groups."""


def _cpu_per_request(taken: Sequence[Sample], requests: int) -> dict[str, float] | None:
    """Milliseconds of CPU per request of each group over `taken`; None without /proc."""
    if not requests or not all(s.cpu_s for s in taken):
        return None
    totals = {"client": sum(s.client_cpu_s for s in taken)}
    for group in CPU_GROUPS[1:]:
        totals[group] = sum(s.cpu_s.get(group, 0.0) for s in taken)
    return {group: round(seconds * 1000 / requests, 2) for group, seconds in totals.items()}


def _cpu_cell(row: dict[str, Any]) -> str:
    cpu = row.get("cpu_ms_per_request")
    return "/".join(f"{cpu[g]:.1f}" for g in CPU_GROUPS) if cpu else "-"


def report(figures: dict[str, Any]) -> None:
    rows = [
        [
            r["stack"],
            r["clients"],
            r["target"],
            r["requests"],
            r["errors"],
            r["req_per_s"],
            r["latency"]["p50_ms"],
            r["latency"]["p99_ms"],
            r["ratio_to_floor"],
            r["client_cpu_share"],
            _cpu_cell(r),
        ]
        for r in figures["rows"]
    ]
    print_table(
        f"MCP over streamable HTTP (mcp.Client), {figures['rounds']} round(s) x "
        f"{figures['seconds_per_phase']:g} s per phase, {figures['seed_documents']} documents, "
        f"{figures['dimensions']} dimensions",
        [
            "http stack",
            "clients",
            "target",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p99 ms",
            "x floor",
            "client cpu",
            "cpu ms/req: client/server/endpoint/pg",
        ],
        rows,
    )


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "MCP benchmark")
    parser.add_argument("--seconds", type=float, default=None, help="per phase")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--clients", default=None, help="comma-separated concurrency levels")
    parser.add_argument("--stacks", default=",".join(STACKS), help="HTTP stacks to measure")
    parser.add_argument("--documents", type=int, default=None, help="documents seeded first")
    parser.add_argument("--targets", default=",".join(KINDS), help="of floor,kb_search,kb_add")
    parser.add_argument(
        "--before-tree",
        default=None,
        help="also measure kb-mcp from this source tree: targets named ...@before",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help=(
            "also measure a kb-mcp serve with these settings, e.g. "
            "KB_MCP_EMBEDDING_MAX_CALLS=0: targets named ...@KB_MCP_EMBEDDING_MAX_CALLS=0 "
            "(repeatable; ';' between settings)"
        ),
    )
    args = parser.parse_args()
    for variant in args.variant:
        try:
            variant_environment(variant)
        except ValueError as exc:
            parser.error(str(exc))
    before_tree = Path(args.before_tree).resolve() if args.before_tree else None
    if before_tree is not None and not (before_tree / "kb_mcp" / "cli.py").is_file():
        parser.error("--before-tree: not a kb-mcp source tree")
    quick = bool(args.quick)
    stacks = [s for s in args.stacks.split(",") if s]
    unknown = [s for s in stacks if s not in STACKS]
    if unknown or not stacks:
        parser.error(f"--stacks: choose from {', '.join(STACKS)}")
    kinds = [k for k in args.targets.split(",") if k]
    if not kinds or any(k not in (*KINDS, *OPTIONAL_KINDS) for k in kinds):
        parser.error(f"--targets: choose from {', '.join((*KINDS, *OPTIONAL_KINDS))}")
    if before_tree is not None:
        kinds += [f"{k}@before" for k in kinds if k != "floor"]
    product_kinds = [k for k in kinds if k != "floor" and "@" not in k]
    kinds += [f"{k}@{v}" for v in args.variant for k in product_kinds]
    levels = [int(c) for c in (args.clients or ("1,4" if quick else "1,16,64")).split(",")]
    if not levels or min(levels) < 1:
        parser.error("--clients: positive integers")
    host = machine()
    figures = asyncio.run(
        run(
            stacks=stacks,
            kinds=kinds,
            levels=levels,
            seconds=args.seconds or (0.4 if quick else 3.0),
            rounds=args.rounds or (1 if quick else 2),
            seed_documents=args.documents if args.documents is not None else (10 if quick else 300),
            before_tree=before_tree,
            variants=args.variant,
        )
    )
    report(figures)
    finish("mcp", figures, quick=quick, as_json=bool(args.json), host=host)
    return 0 if figures["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
