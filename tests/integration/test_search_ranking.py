"""Search that shows its evidence: snippets around the match, keyword ranking, scores.

Each test pins one defect issue 22 found, on real PostgreSQL and the local embeddings.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import apply_migrations, load_migrations
from kb_mcp.db.search import HybridSearch, SearchMode
from kb_mcp.db.snippets import MARK_CLOSE, MARK_OPEN
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.errors import ToolInputError
from kb_mcp.server.tools import build_mcp_server
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import DIMENSIONS, MODEL, KbStack, OpenAIBackend, PoolSource
from tests.support.legacy import insert_legacy_document
from tests.support.mcp_calls import tool_text

_FILLER = (
    "The ingest service batches records, validates each field against the schema and "
    "writes them to the staging area before the nightly merge. "
)


async def _add(kb: KbStack, title: str, content: str, tags: list[str] | None = None) -> str:
    added = await kb.store.add_document(title=title, content=content, tags=tags or [], metadata={})
    return str(added.id)


def _search(kb: KbStack) -> HybridSearch:
    return HybridSearch(kb.source, kb.store)


async def _content(kb: KbStack, doc_id: str) -> str:
    async with kb.source.acquire() as conn:
        content = await conn.fetchval("SELECT content FROM documents WHERE id = $1::uuid", doc_id)
    assert isinstance(content, str)
    return content


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
async def test_the_snippet_is_the_window_around_the_match_with_offsets(
    kb: KbStack, mode: SearchMode
) -> None:
    """A word deep inside a long document comes back highlighted in its snippet, and the
    snippet's and the highlight's offsets point at that text in the document."""
    content = _FILLER * 300 + "The canary host kestrel-7 failed its probe at noon. " + _FILLER * 50
    doc = await _add(kb, "Ingest notes", content)
    await _add(kb, "Other", "Nothing about birds of prey here, only " + _FILLER)
    hits = await _search(kb).search("kestrel-7", limit=3, mode=mode)
    assert str(hits[0].id) == doc
    hit = hits[0]
    assert f"{MARK_OPEN}kestrel-7{MARK_CLOSE}" in hit.snippet or (
        f"{MARK_OPEN}kestrel{MARK_CLOSE}" in hit.snippet
    )
    stored = await _content(kb, doc)
    plain = hit.snippet.replace(MARK_OPEN, "")
    assert stored[hit.start : hit.end] == plain.removesuffix("\u2026")
    assert hit.highlights
    assert all(stored[a:b].lower().startswith("kestrel") for a, b in hit.highlights)
    assert hit.start > 30_000


async def test_keyword_results_do_not_stop_at_the_every_word_documents(kb: KbStack) -> None:
    """One document has every word: the others holding some of them still fill the limit,
    after it; an identifier (`jsonb_set`) finds the page defining it first."""
    target = await _add(
        kb, "JSON functions", "jsonb_set replaces the value at a path in a jsonb document."
    )
    for n in range(6):
        await _add(kb, f"Function {n}", f"Each function number {n} returns a value. " + _FILLER)
    for mode in ("keyword", "hybrid"):
        hits = await _search(kb).search("jsonb_set function", limit=5, mode=mode)
        assert len(hits) == 5, mode
        assert str(hits[0].id) == target, mode


async def test_rare_terms_weigh_more_than_common_ones(kb: KbStack) -> None:
    """In a question, the error code (rare) decides the first hit over words many pages hold."""
    target = await _add(kb, "Deadlocks", "SQLSTATE 40P01 is deadlock_detected: retry the work.")
    for n in range(6):
        await _add(
            kb,
            f"Error reference {n}",
            f"What does SQLSTATE mean? Every error has a SQLSTATE; see what it does mean {n}.",
        )
    unique = await _add(kb, "Unique violations", "Error 23505 is unique_violation on insert.")
    search = _search(kb)
    for mode in ("keyword", "hybrid"):
        hits = await search.search("What does SQLSTATE 40P01 mean?", limit=5, mode=mode)
        assert str(hits[0].id) == target, mode
        hits = await search.search("I got error 23505 on insert", limit=5, mode=mode)
        assert str(hits[0].id) == unique, mode


async def test_titles_and_tags_are_searched_and_weigh_more(kb: KbStack) -> None:
    """A word only in titles finds those documents; a title match outranks a body match."""
    titled = [await _add(kb, "Ops handbook", f"Section {n}. " + _FILLER) for n in range(3)]
    body = await _add(kb, "Runbook", "See the handbook. " + _FILLER)
    tagged = await _add(kb, "Paging", "Who is on call. " + _FILLER, tags=["escalation"])
    hits = await _search(kb).search("handbook", limit=10, mode="keyword")
    assert {str(h.id) for h in hits[:3]} == set(titled)
    assert str(hits[3].id) == body
    assert hits[3].score < hits[2].score
    by_tag = await _search(kb).search("escalation", limit=3, mode="keyword")
    assert [str(h.id) for h in by_tag] == [tagged]


@pytest.mark.parametrize("mode", ["keyword", "hybrid", "vector"])
async def test_an_excluded_word_excludes_the_document(kb: KbStack, mode: SearchMode) -> None:
    """`-word` drops a document holding the word anywhere, not only the passage holding it."""
    long_doc = "Replication slots keep WAL. " + _FILLER * 20 + "Legacy mode uses walsender."
    excluded = await _add(kb, "Replication", long_doc)
    kept = await _add(kb, "Replication basics", "Replication slots keep WAL for standbys.")
    hits = await _search(kb).search("replication slots -walsender", limit=5, mode=mode)
    ids = [str(h.id) for h in hits]
    assert kept in ids
    assert excluded not in ids
    by_title = await _search(kb).search("slots -basics", limit=5, mode=mode)
    assert kept not in [str(h.id) for h in by_title]


async def test_an_exclusion_changes_no_other_documents_keyword_score(kb: KbStack) -> None:
    """The IDF counts the documents the namespace and filter let through: excluding one
    (`-gamma`) drops it from the hits and leaves every other document's score as it was."""
    partial = await _add(kb, "First", "Alpha appears here. " + _FILLER)
    await _add(kb, "Second", "Alpha and gamma appear here. " + _FILLER)
    await _add(kb, "Third", "Beta appears here. " + _FILLER)
    for n in range(4):
        await _add(kb, f"Filler {n}", _FILLER)
    search = _search(kb)
    plain = {str(h.id): h.score for h in await search.search("alpha beta", limit=5, mode="keyword")}
    excluding = await search.search("alpha beta -gamma", limit=5, mode="keyword")
    assert len(plain) == 3
    assert len(excluding) == 2
    assert all(plain[str(h.id)] == h.score for h in excluding)
    assert 0 < plain[partial] < 0.75


async def test_more_documents_tied_than_the_depth_still_fill_the_limit(kb: KbStack) -> None:
    """Only the depth best documents' passages are read, ties at the cut kept: with 8
    documents tied behind the one holding every term and a depth of 3, the limit of 5
    still comes back, that one first, best first, the same on every call."""
    target = await _add(kb, "Notes", "The walrus tusk is long. " + _FILLER)
    for n in range(8):
        await _add(kb, f"Note {n}", f"A walrus number {n} swims. " + _FILLER)
    search = HybridSearch(kb.source, kb.store, depth=3)
    for mode in ("keyword", "hybrid"):
        hits = await search.search("walrus tusk", limit=5, mode=mode)
        assert len(hits) == 5
        assert str(hits[0].id) == target
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        again = await search.search("walrus tusk", limit=5, mode=mode)
        assert [h.id for h in again] == [h.id for h in hits]


async def test_scores_have_a_meaning_and_min_score_cuts(kb: KbStack) -> None:
    """Keyword: 0.75 or more when every term is held, less otherwise; a nonsense query scores low in
    hybrid and min_score leaves nothing of it, while a real match stays."""
    await kb.add_corpus()
    search = _search(kb)
    every = await search.search("autovacuum dead tuples", limit=5, mode="keyword")
    assert every[0].keyword_score is not None
    assert every[0].keyword_score >= 0.75
    some = await search.search("autovacuum sourdough", limit=5, mode="keyword")
    assert some
    assert all(h.score < 0.75 for h in some)
    nonsense = await search.search("purple elephant banana smoothie", limit=5)
    relevant = await search.search("autovacuum dead tuples", limit=5)
    assert nonsense
    assert relevant
    assert max(h.score for h in nonsense) < 0.3 < relevant[0].score
    assert await search.search("purple elephant banana smoothie", limit=5, min_score=0.3) == []
    kept = await search.search("autovacuum dead tuples", limit=5, min_score=0.3)
    assert [h.id for h in kept] == [relevant[0].id]


async def test_scores_are_one_per_document_and_sorted(kb: KbStack) -> None:
    """Every mode returns each document once, best score first, scores within [0, 1]."""
    await kb.add_corpus()
    for mode in ("keyword", "hybrid", "vector"):
        hits = await _search(kb).search("password rotation secrets oxygen", limit=10, mode=mode)
        assert len({h.id for h in hits}) == len(hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert all(0.0 <= h.score <= 1.0 for h in hits)


async def test_a_query_past_the_bounds_is_refused_naming_the_limit(kb: KbStack) -> None:
    """600 exclusions are refused before PostgreSQL sees them; the message says the limit."""
    hostile = " ".join(f"-w{n}" for n in range(600))
    with pytest.raises(ToolInputError, match="at most 40"):
        await _search(kb).search(hostile, limit=5)
    with pytest.raises(ToolInputError, match=r"9 exclusions \(-word\), at most 8"):
        await _search(kb).search("a " + " ".join(f"-w{n}" for n in range(9)), limit=5)


async def test_kb_search_returns_offsets_and_takes_min_score(kb: KbStack) -> None:
    """Through the tool: each hit carries its snippet's offsets and highlights; min_score
    leaves out weaker hits; a bound exceeded or a min_score outside [0, 1] is refused."""
    doc = await _add(kb, "Canary hosts", _FILLER * 5 + "Host kestrel-7 failed its probe.")
    await kb.add_corpus()
    stored = await _content(kb, doc)
    async with Client(build_mcp_server(kb.context)) as client:
        result = await client.call_tool("kb_search", {"query": "kestrel-7 probe", "limit": 10})
        assert not result.is_error, tool_text(result)
        assert isinstance(result.structured_content, dict)
        hits = result.structured_content["hits"]
        first = hits[0]
        assert first["id"] == doc
        assert stored[first["start"] : first["end"]] in first["snippet"].replace("**", "")
        assert [stored[a:b] for a, b in first["highlights"]] == ["kestrel-7", "probe"]
        assert len(hits) > 1
        between = (hits[0]["score"] + hits[1]["score"]) / 2
        strict = await client.call_tool(
            "kb_search", {"query": "kestrel-7 probe", "limit": 10, "min_score": between}
        )
        assert isinstance(strict.structured_content, dict)
        kept = strict.structured_content["hits"]
        assert [h["id"] for h in kept] == [doc]
        for bad in (-0.1, 1.5, "high"):
            refused = await client.call_tool("kb_search", {"query": "q", "min_score": bad})
            assert refused.is_error, bad
        hostile = " ".join(f"-w{n}" for n in range(600))
        refused = await client.call_tool("kb_search", {"query": hostile})
        assert refused.is_error
        assert "at most 40" in tool_text(refused)


async def test_migration_0007_indexes_titles_of_documents_already_stored(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """Documents stored before 0007 get their title and tags indexed in place, and are
    found by a word only their title holds."""
    shipped = load_migrations()
    before = [m for m in shipped if m.version < 7]
    async with (
        PoolSource.open(app_database) as source,
        OpenAIBackend.open(fake_openai.base_url, openai_api_key) as backend,
    ):
        await apply_migrations(source, dimensions=DIMENSIONS, migrations=before)
        embedder = Embedder(backend, model=MODEL, dimensions=DIMENSIONS)
        async with source.acquire() as conn:
            old = await insert_legacy_document(
                conn,
                embedder,
                title="Ops handbook",
                content="Who is on call. " + _FILLER,
                tags=["pager"],
            )
        await apply_migrations(source, dimensions=DIMENSIONS)
        search = HybridSearch(source, DocumentStore(source, embedder))
        by_title = await search.search("handbook", limit=3, mode="keyword")
        by_tag = await search.search("pager", limit=3, mode="keyword")
    assert [h.id for h in by_title] == [old]
    assert [h.id for h in by_tag] == [old]


async def test_migration_0009_finds_identifier_titles_by_their_words(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """A document stored before 0009 titled with a dotted, camelCase identifier is found
    afterwards by one of its words (`unregister`, `selector`, `BaseSelector`) and a tag's
    part (`io`), and still by the whole name; a document added after it too."""
    shipped = load_migrations()
    before = [m for m in shipped if m.version < 9]
    async with (
        PoolSource.open(app_database) as source,
        OpenAIBackend.open(fake_openai.base_url, openai_api_key) as backend,
    ):
        await apply_migrations(source, dimensions=DIMENSIONS, migrations=before)
        embedder = Embedder(backend, model=MODEL, dimensions=DIMENSIONS)
        async with source.acquire() as conn:
            old = await insert_legacy_document(
                conn,
                embedder,
                title="selectors.BaseSelector.unregister",
                content="Stop watching a file object for events. " + _FILLER,
                tags=["net_io"],
            )
        await apply_migrations(source, dimensions=DIMENSIONS)
        store = DocumentStore(source, embedder)
        new = await store.add_document(
            title="asyncio.loop.create_connection", content=_FILLER, tags=[], metadata={}
        )
        search = HybridSearch(source, store)
        found = {
            query: [h.id for h in await search.search(query, limit=3, mode="keyword")]
            for query in (
                "unregister",
                "selector",
                "BaseSelector",
                "io",
                "selectors.BaseSelector.unregister",
                "connection",
            )
        }
    assert found["unregister"] == [old]
    assert found["selector"] == [old]
    assert found["BaseSelector"] == [old]
    assert found["io"] == [old]
    assert found["selectors.BaseSelector.unregister"] == [old]
    assert found["connection"] == [new.id]


_WORDS = ["replica", "vacuum", "index", "lock", "backup", "schema", "tuple", "commit"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    terms=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=6),
    excluded=st.lists(st.sampled_from(_WORDS), max_size=8),
)
async def test_no_hit_holds_an_excluded_word_and_every_hit_holds_a_term(
    kb: KbStack, terms: list[str], excluded: list[str]
) -> None:
    """Generated queries (terms and exclusions of one small vocabulary): in keyword mode
    every hit holds some term and none holds an excluded word, in body, title or tags."""
    if not await _seeded(kb):
        for n in range(12):
            words = [_WORDS[(n * 3 + k) % len(_WORDS)] for k in range(1 + n % 4)]
            await _add(kb, f"Note {n} {words[0]}", " ".join(words) + ". " + _FILLER, [words[-1]])
    query = " ".join([*terms, *(f"-{w}" for w in excluded)])
    hits = await _search(kb).search(query, limit=12, mode="keyword")
    async with kb.source.acquire() as conn:
        for hit in hits:
            text = await conn.fetchval(
                "SELECT lower(title || ' ' || content || ' ' || array_to_string(tags, ' '))"
                " FROM documents WHERE id = $1",
                hit.id,
            )
            held = set(text.replace(".", " ").split())
            assert held & set(terms), (query, hit.title)
            assert not held & set(excluded), (query, hit.title)


async def _seeded(kb: KbStack) -> bool:
    async with kb.source.acquire() as conn:
        return bool(await conn.fetchval("SELECT count(*) FROM documents"))
