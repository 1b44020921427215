"""Retrieval quality of kb_search's modes on real text, and their latency at 10k documents.

Two labelled sets. `awscli`: the AWS CLI's example pages (`awscli/examples/<service>/
<command>.rst` in the `awscli` wheel, installed into this interpreter with `pip install
--no-deps` when missing: nothing of it is imported), every page of eleven services
(`AWSCLI_SERVICES`), title `aws <service> <command>`, content the page; and 109 questions
in `bench/data/awscli_questions.tsv`, written from the command lists before any search was
run, each labelled with its kind (identifier, paraphrase, multi) and the page answering it.

`stdlib`: built from the docstrings of the Python standard library this
interpreter ships (parsed with `ast`, nothing imported), without looking at any ranking:

- every public top-level function or class (and public method of a public class) of every
  standard-library module outside tests, IDLE, tkinter and lib2to3, whose docstring has a
  one-line summary of 4 to 20 words, a blank line, then a body of at least 200
  characters; summaries and bodies that occur twice are dropped;
- sorted by (module, qualified name), `--documents` of them taken at evenly spaced
  positions;
- each becomes a document (title: the qualified name; content: the body, without the
  summary) and a query (the summary line), labelled with that one document.

So a query is the author's own one-line description of what the body explains: neither
copied from the document nor written for this benchmark. Every document is a query's
answer, and the same queries go to every mode. Embeddings are the local stack's
deterministic feature hashing (`kb_mcp.devstack.hashing`, 1536 dimensions), so the figures
are reproducible on any machine; real embedding models rank better by meaning, and the
keyword signal matters most where they fail (identifiers, codes, names).

Metrics per mode and per question kind: recall@1, recall@5 (the labelled document is
first / in the top 5) and MRR over the top 10, on the queries at even positions. The queries
at odd positions are the tuning half: the grid shows hybrid MRR on them for several keyword
weights of the hybrid score (the shipped default is marked); it was picked there, never on
the reported half. `--no-grid` skips it (and runs with a kb-mcp that has no
`ScoreWeights`, for a before/after comparison on an older checkout).

Latency: 10,000 synthetic documents (bench_search's generator, bulk-loaded), query vectors
precomputed, modes interleaved query by query so they share the machine's state; the
hybrid / vector p50 ratio is the figure to watch. Two query sets of 200: `phrase`, 2-5
consecutive words of a random document (bench_search's queries: one document holds them
all), and `scattered`, one word from each of three random documents (no document has them
all). The keyword side does the same work for both: per word, the document ids of the
chunks holding it (GIN), then passages of the best documents only.

`--tuning-misses` lists the tuning half's questions that hybrid does not rank first, with
each mode's rank, and counts them by class (`bench._misses`).

    python -m bench.bench_retrieval [--quick] [--json] [--documents 300] [--latency-docs 10000]
        [--no-grid] [--tuning-misses] [--sets awscli,stdlib]
"""

from __future__ import annotations

import ast
import asyncio
import random
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import bench_parser, finish, latency_summary, machine, print_table
from bench._awscli import LabelledSet, awscli_set
from bench._misses import tuning_misses
from bench._stack import open_database
from bench.bench_search import (
    DIMENSIONS,
    HashingEmbedder,
    PoolSource,
    _bulk_fill,
    _queries,
    _vocabulary,
)
from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import apply_migrations
from kb_mcp.db.search import SEARCH_MODES, HybridSearch, SearchMode
from kb_mcp.db.vectors import init_connection
from kb_mcp.observability.logging import configure_logging

TOP = 10
_SKIP_PARTS = {"test", "tests", "idlelib", "tkinter", "lib2to3", "site-packages", "turtledemo"}


@dataclass(frozen=True, slots=True)
class Labelled:
    title: str
    content: str
    query: str
    kind: str = "summary"


def stdlib_set(documents: int) -> LabelledSet:
    corpus = build_corpus(documents)
    return LabelledSet(
        "stdlib",
        [(c.title, c.content) for c in corpus],
        [(c.kind, c.query, n) for n, c in enumerate(corpus)],
    )


def _docstrings(path: Path, module: str) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        if doc:
            yield f"{module}.{node.name}", doc
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    method_doc = ast.get_docstring(item)
                    if method_doc and not item.name.startswith("_"):
                        yield f"{module}.{node.name}.{item.name}", method_doc


def build_corpus(documents: int) -> list[Labelled]:
    """The labelled set (see the module docstring), deterministic for one Python version."""
    root = Path(sysconfig.get_paths()["stdlib"])
    candidates: list[Labelled] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if _SKIP_PARTS & set(parts) or any(p.startswith(("_", ".")) for p in parts):
            continue
        module = ".".join(parts).removesuffix(".py").removesuffix(".__init__")
        for name, doc in _docstrings(path, module):
            summary, _, body = doc.partition("\n\n")
            if "\n" in summary.strip() or not 4 <= len(summary.split()) <= 20:
                continue
            if len(body.strip()) < 200:
                continue
            candidates.append(Labelled(name, body.strip(), summary.strip()))
    queries = [c.query for c in candidates]
    bodies = [c.content for c in candidates]
    unique = [c for c in candidates if queries.count(c.query) == 1 and bodies.count(c.content) == 1]
    if len(unique) < documents:
        raise SystemExit(f"only {len(unique)} labelled docstrings found; ask for fewer")
    step = len(unique) / documents
    return [unique[int(i * step)] for i in range(documents)]


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "recall_at_1": round(sum(1 for r in ranks if r == 1) / n, 3),
        "recall_at_5": round(sum(1 for r in ranks if r is not None and r <= 5) / n, 3),
        "mrr": round(sum(1 / r for r in ranks if r is not None) / n, 3),
        "n": n,
    }


async def _ranks(
    search: HybridSearch, questions: list[tuple[str, str, Any]], mode: SearchMode
) -> list[int | None]:
    ranks: list[int | None] = []
    for _, query, doc_id in questions:
        hits = await search.search(query, limit=TOP, mode=mode)
        found = [h.id for h in hits]
        ranks.append(found.index(doc_id) + 1 if doc_id in found else None)
    return ranks


def _by_kind(
    questions: list[tuple[str, str, Any]], ranks: list[int | None]
) -> dict[str, dict[str, float]]:
    kinds = sorted({kind for kind, _, _ in questions})
    return {
        kind: _metrics([r for (k, _, _), r in zip(questions, ranks, strict=True) if k == kind])
        for kind in kinds
    }


async def quality(
    pool: asyncpg.Pool[Any], labelled: LabelledSet, *, grid: bool = True, misses: bool = False
) -> dict[str, Any]:
    embedder = HashingEmbedder(DIMENSIONS)
    embedder.precompute([q for _, q, _ in labelled.questions])
    source = PoolSource(pool)
    store = DocumentStore(source, embedder)
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE documents CASCADE")
    ids = []
    for title, content in labelled.documents:
        added = await store.add_document(title=title, content=content, tags=[], metadata={})
        ids.append(added.id)
    questions = [(kind, q, ids[n]) for kind, q, n in labelled.questions]
    # Even positions are held out for the figures; odd ones tune the hybrid weight.
    held, tune = questions[0::2], questions[1::2]
    modes: dict[str, Any] = {}
    for mode in SEARCH_MODES:
        ranks = await _ranks(HybridSearch(source, store), held, mode)
        modes[mode] = {**_metrics(ranks), "by_kind": _by_kind(held, ranks)}
    figures: dict[str, Any] = {
        "set": labelled.name,
        "documents": len(labelled.documents),
        "queries": len(held),
        "tuning_queries": len(tune),
        "modes": modes,
    }
    if grid:
        # Imported here: a checkout from before the score has none (run it with --no-grid).
        from kb_mcp.db.search import ScoreWeights

        default = ScoreWeights()
        figures["grid"] = []
        for keyword in (0.4, 0.5, 0.6, 0.7, 0.8):
            weights = ScoreWeights(keyword=keyword)
            search = HybridSearch(source, store, weights=weights)
            figures["grid"].append(
                {
                    "keyword_weight": keyword,
                    "mrr": _metrics(await _ranks(search, tune, "hybrid"))["mrr"],
                    "default": weights == default,
                }
            )
    if misses:
        titles = {doc_id: labelled.documents[n][0] for n, doc_id in enumerate(ids)}
        figures["tuning_misses"] = await tuning_misses(HybridSearch(source, store), tune, titles)
    return figures


async def latency(pool: asyncpg.Pool[Any], documents: int, queries: int) -> dict[str, Any]:
    rng = random.Random(1536)
    vocabulary = _vocabulary(rng)
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE documents CASCADE")
    _, chunks, contents, _ = await _bulk_fill(pool, rng, vocabulary, 0, documents)
    query_sets = {
        "phrase": _queries(rng, contents, queries),
        "scattered": _scattered(rng, contents, queries),
    }
    embedder = HashingEmbedder(DIMENSIONS)
    source = PoolSource(pool)
    search = HybridSearch(source, DocumentStore(source, embedder))
    sets: dict[str, Any] = {}
    for name, asked in query_sets.items():
        embedder.precompute(asked)
        for query in asked[:5]:
            for mode in SEARCH_MODES:
                await search.search(query, limit=TOP, mode=mode)
        timings: dict[str, list[float]] = {mode: [] for mode in SEARCH_MODES}
        for query in asked:
            for mode in SEARCH_MODES:
                began = time.perf_counter()
                await search.search(query, limit=TOP, mode=mode)
                timings[mode].append(time.perf_counter() - began)
        summary = {mode: latency_summary(values) for mode, values in timings.items()}
        ratio = {
            mode: round(summary[mode]["p50_ms"] / summary["vector"]["p50_ms"], 2)
            for mode in SEARCH_MODES
        }
        sets[name] = {"modes": summary, "p50_vs_vector": ratio}
    return {"documents": documents, "chunks": chunks, "query_sets": sets}


def _scattered(rng: random.Random, contents: list[str], count: int) -> list[str]:
    """Three words from three different documents: rarely all in one, so the any-word pass."""
    queries = []
    for _ in range(count):
        words = [rng.choice(rng.choice(contents).rstrip(".").split()) for _ in range(3)]
        queries.append(" ".join(words).lower().strip("."))
    return queries


async def run(
    documents: int,
    latency_docs: int,
    queries: int,
    *,
    sets: list[str],
    grid: bool,
    misses: bool = False,
) -> dict[str, Any]:
    configure_logging(json_lines=True, level="WARNING", stream=sys.stderr)
    async with open_database() as db:
        pool = await asyncpg.create_pool(
            **db.connect_kwargs(), min_size=2, max_size=4, init=init_connection
        )
        try:
            await apply_migrations(PoolSource(pool), dimensions=DIMENSIONS)
            figures: dict[str, Any] = {"quality": []}
            for name in sets:
                labelled = awscli_set() if name == "awscli" else stdlib_set(documents)
                figures["quality"].append(await quality(pool, labelled, grid=grid, misses=misses))
            if latency_docs:
                figures["latency"] = await latency(pool, latency_docs, queries)
        finally:
            await pool.close()
    return {"dimensions": DIMENSIONS, "top": TOP, **figures}


def report(figures: dict[str, Any]) -> None:
    for q in figures["quality"]:
        print(
            f"retrieval on the {q['set']} set: {q['documents']} documents, {q['queries']}"
            f" held-out questions, feature-hashing embeddings ({figures['dimensions']} dimensions)"
        )
        modes = sorted(q["modes"].items(), key=lambda kv: SEARCH_MODES.index(kv[0]))
        print_table(
            f"{q['set']}: quality by mode and question kind",
            ["mode", "kind", "n", "recall@1", "recall@5", f"MRR@{figures['top']}"],
            [
                [m, kind, v["n"], v["recall_at_1"], v["recall_at_5"], v["mrr"]]
                for m, got in modes
                for kind, v in [("all", got), *sorted(got["by_kind"].items())]
            ],
        )
        if "grid" in q:
            print_table(
                f"{q['set']}: hybrid MRR by keyword weight, on the other {q['tuning_queries']}",
                ["keyword weight", "MRR", ""],
                [
                    [g["keyword_weight"], g["mrr"], "default" if g["default"] else ""]
                    for g in q["grid"]
                ],
            )
        if "tuning_misses" in q:
            got = q["tuning_misses"]
            print_table(
                f"{q['set']}: tuning questions hybrid misses at rank 1",
                ["kind", *(f"{m} rank" for m in SEARCH_MODES), "question", "wants", "first"],
                got["questions"],
            )
            print_table(
                f"{q['set']}: tuning misses by class",
                ["class", "n"],
                [[k, v] for k, v in got["classes"].items()],
            )
    if "latency" not in figures:
        return
    lat = figures["latency"]
    print_table(
        f"search latency at {lat['documents']} documents ({lat['chunks']} chunks), ms",
        ["queries", "mode", "n", "p50", "p95", "p99", "p50 / vector"],
        [
            [name, m, s["n"], s["p50_ms"], s["p95_ms"], s["p99_ms"], got["p50_vs_vector"][m]]
            for name, got in lat["query_sets"].items()
            for m, s in got["modes"].items()
        ],
    )


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0] if __doc__ else "retrieval benchmark")
    parser.add_argument("--documents", type=int, default=None)
    parser.add_argument("--latency-docs", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--no-grid", action="store_true", help="skip the hybrid weight grid")
    parser.add_argument(
        "--tuning-misses",
        action="store_true",
        help="list the tuning half's questions hybrid misses at rank 1, by class",
    )
    parser.add_argument(
        "--sets", default=None, help="labelled sets, comma-separated (awscli,stdlib; quick: stdlib)"
    )
    args = parser.parse_args()
    quick = bool(args.quick)
    host = machine()
    figures = asyncio.run(
        run(
            args.documents or (120 if quick else 300),
            args.latency_docs if args.latency_docs is not None else (500 if quick else 10_000),
            args.queries or (20 if quick else 200),
            sets=[
                n for n in (args.sets or ("stdlib" if quick else "awscli,stdlib")).split(",") if n
            ],
            grid=not args.no_grid,
            misses=bool(args.tuning_misses),
        )
    )
    report(figures)
    finish("retrieval", figures, quick=quick, as_json=bool(args.json), host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
