"""Filters on search (every mode) and list: tags all-of / any-of, metadata eq, contains and
ranges (numbers, dates), created / updated before / after, namespaces; on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kb_mcp.db.filters import DocumentFilter, MetadataCondition
from kb_mcp.db.search import HybridSearch
from tests.support.knowledge_base import KbStack


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# name -> (tags, metadata, created_at, updated_at); every content mentions harbours.
_DOCS: dict[str, tuple[list[str], dict[str, Any], str, str]] = {
    "A": (
        ["a", "x"],
        {"team": "ops", "year": 2019, "labels": ["red", "blue"], "due": "2024-01-15"},
        "2024-01-01",
        "2024-12-01",
    ),
    "B": (
        ["b"],
        {"team": "dev", "year": 2021, "labels": ["green"], "due": "2024-06-01T08:00:00Z"},
        "2024-03-01",
        "2024-03-01",
    ),
    "C": (
        ["a", "b"],
        {"team": "ops", "year": 2023, "labels": ["red"], "due": "not a date"},
        "2024-06-01",
        "2024-06-01",
    ),
    "D": ([], {"team": {"name": "ops"}, "year": "2020"}, "2024-09-01", "2024-09-01"),
}


async def _store_docs(kb: KbStack) -> dict[str, str]:
    """The four documents in `default` (timestamps set), and a look-alike elsewhere."""
    ids: dict[str, str] = {}
    for name, (tags, metadata, created, updated) in _DOCS.items():
        added = await kb.store.add_document(
            title=f"Harbour note {name}",
            content=f"Harbour note {name}: the harbour master logs every ship in the harbour.",
            tags=tags,
            metadata=metadata,
        )
        ids[str(added.id)] = name
        async with kb.source.acquire() as conn:
            await conn.execute(
                "UPDATE documents SET created_at = $2, updated_at = $3 WHERE id = $1",
                added.id,
                _at(created),
                _at(updated),
            )
    await kb.store.add_document(
        title="Harbour note elsewhere",
        content="Harbour note: the harbour master logs every ship in the harbour.",
        tags=["a", "b", "x"],
        metadata=_DOCS["A"][1],
        namespace="elsewhere",
    )
    return ids


def _m(key: str, op: Any, value: Any) -> MetadataCondition:
    return MetadataCondition(key, op, value)


_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("no filter", {}, {"A", "B", "C", "D"}),
    ("tags all-of one", {"tags_all": ("a",)}, {"A", "C"}),
    ("tags all-of two", {"tags_all": ("a", "b")}, {"C"}),
    ("tags any-of", {"tags_any": ("x", "b")}, {"A", "B", "C"}),
    ("metadata eq scalar", {"metadata": (_m("team", "eq", "ops"),)}, {"A", "C"}),
    ("metadata eq array is exact", {"metadata": (_m("labels", "eq", ["red"]),)}, {"C"}),
    ("metadata eq object", {"metadata": (_m("team", "eq", {"name": "ops"}),)}, {"D"}),
    ("metadata contains element", {"metadata": (_m("labels", "contains", "red"),)}, {"A", "C"}),
    (
        "metadata contains elements",
        {"metadata": (_m("labels", "contains", ["red", "blue"]),)},
        {"A"},
    ),
    ("metadata contains scalar", {"metadata": (_m("team", "contains", "dev"),)}, {"B"}),
    ("number gte skips strings", {"metadata": (_m("year", "gte", 2021),)}, {"B", "C"}),
    ("number lt", {"metadata": (_m("year", "lt", 2021),)}, {"A"}),
    (
        "number range both ends",
        {"metadata": (_m("year", "gt", 2019), _m("year", "lte", 2023.5))},
        {"B", "C"},
    ),
    (
        "date gte skips malformed",
        {"metadata": (_m("due", "gte", _at("2024-03-01")),)},
        {"B"},
    ),
    ("date lt", {"metadata": (_m("due", "lt", _at("2024-03-01")),)}, {"A"}),
    ("created after", {"created_after": _at("2024-02-01")}, {"B", "C", "D"}),
    ("created before", {"created_before": _at("2024-04-01")}, {"A", "B"}),
    ("updated after", {"updated_after": _at("2024-10-01")}, {"A"}),
    ("updated before", {"updated_before": _at("2024-05-01")}, {"B"}),
    (
        "all together",
        {
            "tags_any": ("a", "b"),
            "metadata": (_m("year", "gte", 2020),),
            "created_before": _at("2024-05-01"),
        },
        {"B"},
    ),
    ("another namespace", {"namespace": "elsewhere", "tags_all": ("x",)}, {"elsewhere"}),
    ("an empty namespace", {"namespace": "nothing-here"}, set()),
]


async def test_every_filter_narrows_every_search_mode_and_the_listing(kb: KbStack) -> None:
    """Each filter of `_CASES` gives its documents in hybrid, vector and keyword search and
    in kb_list (one database for all the cases: they only read)."""
    ids = await _store_docs(kb)
    search = HybridSearch(kb.source, kb.store)
    for case, conditions, expected in _CASES:
        where = DocumentFilter(**conditions)
        found: dict[str, set[str]] = {}
        for mode in ("hybrid", "vector", "keyword"):
            hits = await search.search("harbour master ship", limit=10, mode=mode, where=where)
            found[mode] = {ids.get(str(h.id), "elsewhere") for h in hits}
        page = await kb.store.list_documents(limit=10, where=where)
        found["list"] = {ids.get(str(d.id), "elsewhere") for d in page.documents}
        assert page.total == len(expected), case
        assert found == dict.fromkeys(("hybrid", "vector", "keyword", "list"), expected), case


async def test_a_filter_passing_few_documents_still_fills_the_vector_ranking(
    kb: KbStack,
) -> None:
    """When the HNSW candidates hold too few documents that pass, search is exact over
    those that do: a selective filter never hides a match."""
    ids = await kb.add_corpus()
    where = DocumentFilter(tags_any=("cooking", "biology"))
    hits = await kb.store.search("rust borrow checker", limit=5, where=where)
    assert {str(h.id) for h in hits} == {
        ids["Baking sourdough bread"],
        ids["Photosynthesis in plants"],
    }


async def test_external_id_comes_back_from_search_and_list(kb: KbStack) -> None:
    """Search hits (every mode) and listed documents carry their external_id."""
    await kb.store.add_document(
        title="Keyed", content="lighthouse keepers", tags=[], metadata={}, external_id="k-1"
    )
    search = HybridSearch(kb.source, kb.store)
    for mode in ("hybrid", "vector", "keyword"):
        hits = await search.search("lighthouse keepers", limit=3, mode=mode)
        assert [h.external_id for h in hits] == ["k-1"], mode
    page = await kb.store.list_documents(limit=5)
    assert [d.external_id for d in page.documents] == ["k-1"]


async def test_a_date_range_on_metadata_survives_a_parallel_plan(kb: KbStack) -> None:
    """The date reader (a subtransaction inside) is never run by a parallel query, even
    when PostgreSQL is told parallel plans cost nothing: no statement fails."""
    where = DocumentFilter(metadata=(_m("due", "gte", _at("2024-03-01")),))
    predicate, params = where.predicate("d", 1)
    async with kb.source.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO documents (title, content, metadata) SELECT 't', 'c',"
            " jsonb_build_object('due', CASE WHEN n % 2 = 0 THEN '2024-05-01' ELSE 'x' END)"
            " FROM generate_series(1, 20000) AS n"
        )
        for setting in (
            "parallel_setup_cost = 0",
            "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0",
            "max_parallel_workers_per_gather = 2",
        ):
            await conn.execute(f"SET LOCAL {setting}")
        statement = f"SELECT count(*) FROM documents d WHERE {predicate}"  # noqa: S608
        # EXPLAIN ANALYZE runs the statement with the plan it would get from a client that
        # reads every row (parallel when allowed): the subtransaction failed there.
        await conn.fetch(f"EXPLAIN ANALYZE {statement}", *params)
        found = await conn.fetchval(statement, *params)
    assert found == 10000
