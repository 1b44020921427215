"""Namespaces: migration 0008 on a database holding documents, keys unique per namespace,
the namespace tools (counts, confirmed delete), kb_get / kb_delete by external_id,
kb_add_many, and what a duplicate add says it did not store."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents

from kb_mcp.db.documents import DocumentStore
from kb_mcp.db.migrate import apply_migrations, load_migrations
from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.server.tools import build_mcp_server
from tests.plugins.servers import AppDatabase
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.knowledge_base import DIMENSIONS, MODEL, KbStack, OpenAIBackend, PoolSource
from tests.support.legacy import insert_legacy_document
from tests.support.mcp_calls import call_ok, call_refused


async def test_migration_0008_moves_stored_documents_into_default_in_place(
    app_database: AppDatabase, fake_openai: FakeOpenAIServer, openai_api_key: str
) -> None:
    """Documents written by the previous release keep their ids, chunks and keys, land in
    `default`, are found by key, and their key can be reused in another namespace."""
    shipped = load_migrations()
    before = [m for m in shipped if m.version < 7]
    async with (
        PoolSource.open(app_database) as source,
        OpenAIBackend.open(fake_openai.base_url, openai_api_key) as backend,
    ):
        embedder = Embedder(backend, model=MODEL, dimensions=DIMENSIONS)
        await apply_migrations(source, dimensions=DIMENSIONS, migrations=before)
        async with source.acquire() as conn:
            keyed = await insert_legacy_document(
                conn, embedder, title="Keyed", content="old keyed text", external_id="k1"
            )
            plain = await insert_legacy_document(
                conn, embedder, title="Plain", content="old plain text", tags=["t"]
            )
        applied = await apply_migrations(source, dimensions=DIMENSIONS)
        assert applied[:2] == ["0007_keyword_fields", "0008_namespaces_filters"]
        async with source.acquire() as conn:
            rows = await conn.fetch("SELECT id, namespace FROM documents ORDER BY title")
            chunks = await conn.fetchval("SELECT count(*) FROM chunks")
        store = DocumentStore(source, embedder)
        by_key = await store.get_document(namespace="default", external_id="k1")
        again = await store.add_document(
            title="Keyed", content="old keyed text", tags=[], metadata={}, external_id="k1"
        )
        elsewhere = await store.add_document(
            title="Keyed", content="new", tags=[], metadata={}, external_id="k1", namespace="p2"
        )
        plain_doc = await store.get_document(plain)
    assert [(r["id"], r["namespace"]) for r in rows] == [(keyed, "default"), (plain, "default")]
    assert chunks == 2
    assert by_key is not None
    assert by_key.id == keyed
    assert (again.status, again.id) == ("unchanged", keyed)
    assert elsewhere.status == "created"
    assert elsewhere.id != keyed
    assert plain_doc is not None
    assert (plain_doc.namespace, plain_doc.tags) == ("default", ["t"])


def _connect(kb: KbStack) -> Client:
    return Client(build_mcp_server(kb.context))


async def test_namespaces_are_separate_collections(kb: KbStack) -> None:
    """Identical content is stored once per namespace; search, list and counts see one
    namespace; deleting one needs its name as confirmation and leaves the others."""
    doc = {"title": "Tides", "content": "spring tides and neap tides", "tags": [], "metadata": {}}
    async with _connect(kb) as client:
        first = await call_ok(client, "kb_add", doc)
        other = await call_ok(client, "kb_add", {**doc, "namespace": "ocean"})
        assert other["status"] == "created"
        assert other["id"] != first["id"]
        again = await call_ok(client, "kb_add", {**doc, "namespace": "ocean"})
        assert (again["status"], again["id"]) == ("duplicate", other["id"])
        hits = await call_ok(client, "kb_search", {"query": "tides", "namespace": "ocean"})
        assert [h["id"] for h in hits["hits"]] == [other["id"]]
        listed = await call_ok(client, "kb_list", {"namespace": "ocean"})
        assert [d["namespace"] for d in listed["documents"]] == ["ocean"]
        counts = await call_ok(client, "kb_namespaces", {})
        assert counts["namespaces"] == [
            {"namespace": "default", "documents": 1},
            {"namespace": "ocean", "documents": 1},
        ]
        refused = await call_refused(
            client, "kb_delete_namespace", {"namespace": "ocean", "confirm": "yes"}
        )
        assert "nothing deleted" in refused
        assert "must be 1-64" in await call_refused(
            client, "kb_add", {**doc, "namespace": "no spaces"}
        )
        deleted = await call_ok(
            client, "kb_delete_namespace", {"namespace": "ocean", "confirm": "ocean"}
        )
        assert deleted == {"namespace": "ocean", "deleted": 1}
        counts = await call_ok(client, "kb_namespaces", {})
    assert counts["namespaces"] == [{"namespace": "default", "documents": 1}]
    assert await kb.count("chunks") == 1


async def test_get_and_delete_by_external_id(kb: KbStack) -> None:
    """kb_get and kb_delete take an external_id (in a namespace) instead of an id, and
    return it; giving both or neither is refused; kb_update's namespace guards its id."""
    async with _connect(kb) as client:
        added = await call_ok(
            client,
            "kb_add",
            {"title": "K", "content": "keyed body", "external_id": "notes/k.md", "namespace": "n"},
        )
        got = await call_ok(client, "kb_get", {"external_id": "notes/k.md", "namespace": "n"})
        assert (got["id"], got["external_id"], got["namespace"]) == (added["id"], "notes/k.md", "n")
        by_id = await call_ok(client, "kb_get", {"id": added["id"]})
        assert by_id["external_id"] == "notes/k.md"
        assert "no document has" in await call_refused(
            client, "kb_get", {"external_id": "notes/k.md"}
        )
        assert "no document has" in await call_refused(
            client, "kb_get", {"id": added["id"], "namespace": "default"}
        )
        assert "exactly one" in await call_refused(client, "kb_get", {})
        assert "exactly one" in await call_refused(
            client, "kb_delete", {"id": added["id"], "external_id": "notes/k.md"}
        )
        assert "256" in await call_refused(
            client, "kb_get", {"external_id": "x" * 257, "namespace": "n"}
        )
        assert "in namespace default" in await call_refused(
            client, "kb_update", {"id": added["id"], "namespace": "default", "tags": ["t"]}
        )
        await call_ok(client, "kb_update", {"id": added["id"], "namespace": "n", "tags": ["t"]})
        gone = await call_ok(client, "kb_delete", {"external_id": "notes/k.md", "namespace": "n"})
        again = await call_ok(client, "kb_delete", {"external_id": "notes/k.md", "namespace": "n"})
    assert (gone["deleted"], again["deleted"]) == (True, False)


async def test_kb_update_by_external_id(kb: KbStack) -> None:
    """kb_update names a document by external_id in its namespace (default "default"), like
    kb_get; a key not in that namespace is refused and nothing changes."""
    async with _connect(kb) as client:
        added = await call_ok(
            client,
            "kb_add",
            {"title": "K", "content": "keyed body", "external_id": "notes/k.md", "namespace": "n"},
        )
        assert "no document has external_id 'notes/k.md' in namespace default" in (
            await call_refused(client, "kb_update", {"external_id": "notes/k.md", "tags": ["t"]})
        )
        updated = await call_ok(
            client,
            "kb_update",
            {"external_id": "notes/k.md", "namespace": "n", "title": "Kept key", "tags": ["t"]},
        )
        got = await call_ok(client, "kb_get", {"external_id": "notes/k.md", "namespace": "n"})
        assert "exactly one" in await call_refused(
            client, "kb_update", {"id": added["id"], "external_id": "notes/k.md", "tags": ["u"]}
        )
    assert updated["id"] == added["id"]
    assert updated["changed"] == ["title", "tags"]
    assert (got["title"], got["tags"], got["content"]) == ("Kept key", ["t"], "keyed body")


async def test_a_duplicate_add_names_the_fields_it_did_not_store(kb: KbStack) -> None:
    """Identical content with another title and tags: status duplicate, the stored
    document unchanged, and `ignored` says title and tags were not stored."""
    body = {"content": "the same words", "metadata": {"v": 1}}
    async with _connect(kb) as client:
        first = await call_ok(client, "kb_add", {**body, "title": "Old", "tags": ["a"]})
        dup = await call_ok(client, "kb_add", {**body, "title": "New", "tags": ["b"]})
        same = await call_ok(client, "kb_add", {**body, "title": "Old", "tags": ["a"]})
        stored = await call_ok(client, "kb_get", {"id": first["id"]})
    assert (dup["status"], dup["id"], dup["ignored"]) == (
        "duplicate",
        first["id"],
        ["title", "tags"],
    )
    assert same["ignored"] == []
    assert (stored["title"], stored["tags"]) == ("Old", ["a"])


async def test_add_many_reports_one_result_per_document(kb: KbStack) -> None:
    """kb_add_many stores the good items, says why a bad one failed, in order; sent again,
    keyed items are unchanged (nothing embedded)."""
    documents = [
        {"title": f"Doc {i}", "content": f"batch body number {i}", "external_id": f"b/{i}"}
        for i in range(5)
    ]
    documents.insert(2, {"title": "   ", "content": "no title"})
    async with _connect(kb) as client:
        first = await call_ok(client, "kb_add_many", {"documents": documents, "namespace": "b"})
        calls = len(kb.backend.calls)
        second = await call_ok(client, "kb_add_many", {"documents": documents, "namespace": "b"})
        too_many = await call_refused(client, "kb_add_many", {"documents": [documents[0]] * 101})
    assert [r["index"] for r in first["results"]] == list(range(6))
    assert [r["status"] for r in first["results"]] == ["created"] * 2 + ["failed"] + ["created"] * 3
    assert "title must not be empty" in first["results"][2]["error"]
    assert (first["stored"], first["failed"]) == (5, 1)
    assert [r["status"] for r in second["results"]] == ["unchanged"] * 2 + ["failed"] + [
        "unchanged"
    ] * 3
    assert len(kb.backend.calls) == calls
    assert "100" in too_many
    assert await kb.count("documents") == 5


async def test_namespace_resources_list_counts_and_filtered_documents(kb: KbStack) -> None:
    """kb://namespaces gives the counts; the namespace documents template filters by tags,
    metadata and dates from its query; a bad date is an error naming it."""
    ids = await kb.add_corpus()
    await kb.store.add_document(
        title="Elsewhere", content="other", tags=["ops"], metadata={}, namespace="side"
    )
    async with _connect(kb) as client:
        counts = await client.read_resource("kb://namespaces")
        prefixed = await client.read_resource("kb://namespaces?prefix=si")
        ops = await client.read_resource(
            "kb://namespaces/default/documents?tags=ops&metadata=%7B%22source%22%3A%22corpus%22%7D"
        )
        later = await client.read_resource(
            "kb://namespaces/default/documents?created_after=2999-01-01"
        )
        with pytest.raises(MCPError, match="created_before"):
            await client.read_resource("kb://namespaces/default/documents?created_before=soon")
    (text,) = counts.contents
    assert isinstance(text, TextResourceContents)
    assert json.loads(text.text) == [
        {"namespace": "default", "documents": 5},
        {"namespace": "side", "documents": 1},
    ]
    (side,) = prefixed.contents
    assert isinstance(side, TextResourceContents)
    assert json.loads(side.text) == [{"namespace": "side", "documents": 1}]
    (listing,) = ops.contents
    assert isinstance(listing, TextResourceContents)
    found = json.loads(listing.text)
    assert {d["id"] for d in found["documents"]} == {
        ids["Vacuuming PostgreSQL tables"],
        ids["Rotating secrets in AWS Secrets Manager"],
    }
    assert found["total"] == 2
    (empty,) = later.contents
    assert isinstance(empty, TextResourceContents)
    assert json.loads(empty.text) == {"total": 0, "documents": []}
