"""Which tuning questions `bench.bench_retrieval`'s hybrid ranking misses, and why.

For deciding ranking mechanisms by failure class, on the tuning half only (odd positions):
the reported half is never listed. A miss is a question hybrid does not rank first; its
class is "no mode finds it" (no mode has the page in the top 10: no word or feature in
common), "a page of its family first" (a sibling: `aws <service>` of the same service, or
the same dotted parent in the stdlib set) or "a page of another family first".
"""

from __future__ import annotations

from typing import Any

from kb_mcp.db.search import SEARCH_MODES, HybridSearch

__all__ = ["tuning_misses"]

TOP = 10


def _family(title: str) -> str:
    """The group of pages a title belongs to: `aws <service>`, or a dotted name's parent."""
    return " ".join(title.split()[:2]) if " " in title else title.rpartition(".")[0]


async def tuning_misses(
    search: HybridSearch, tune: list[tuple[str, str, Any]], titles: dict[Any, str]
) -> dict[str, Any]:
    """Each tuning question hybrid does not rank first: its rank per mode and the first hit;
    counted by class (no mode finds it in the top 10 / a page of its family first / another)."""
    rows: list[list[Any]] = []
    classes: dict[str, int] = {}
    for kind, query, doc_id in tune:
        ranks: dict[str, int | None] = {}
        first = ""
        for mode in SEARCH_MODES:
            found = [h.id for h in await search.search(query, limit=TOP, mode=mode)]
            ranks[mode] = found.index(doc_id) + 1 if doc_id in found else None
            if mode == "hybrid" and found:
                first = titles[found[0]]
        if ranks["hybrid"] == 1:
            continue
        if all(r is None for r in ranks.values()):
            cls = "no mode finds it"
        elif first and _family(first) == _family(titles[doc_id]):
            cls = "a page of its family first"
        else:
            cls = "a page of another family first"
        key = f"{cls} ({kind})"
        classes[key] = classes.get(key, 0) + 1
        rows.append([kind, *ranks.values(), query, titles[doc_id], first])
    return {"classes": dict(sorted(classes.items())), "questions": rows}
