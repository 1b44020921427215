"""kb_update's answers are true: a commit cut off is "outcome unknown" (never "nothing
changed") and retrying it is safe; a write that wrote nothing is rolled back, so it can
never be "unknown"; a failed release after COMMIT is still success.

The COMMIT is cut off for real: a deferred constraint trigger makes the backend terminate
itself while committing (`pg_terminate_backend(pg_backend_pid())`), deterministically.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from mcp import Client

from kb_mcp.db.outcome import Unwritten, committed
from kb_mcp.db.port import AnyConnection
from kb_mcp.db.revise import DocumentReviser
from kb_mcp.db.sqltext import quote_ident
from kb_mcp.devstack.postgres import PostgresCluster
from kb_mcp.server.tools import build_mcp_server
from tests.plugins.servers import AppDatabase
from tests.support.knowledge_base import KbStack
from tests.support.mcp_calls import call_ok, call_refused

_LONG = "\n\n".join(
    f"Paragraph {i} is about {topic}. " * 25
    for i, topic in enumerate(("harbours", "lighthouses", "tides", "ferries", "storms"))
)


# A deferred constraint trigger runs at COMMIT: this one kills its own backend there, so
# the server goes away in the middle of the COMMIT of an update titled "Doomed".
_KILL_AT_COMMIT = """
CREATE FUNCTION kill_own_backend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER kill_at_commit AFTER UPDATE ON documents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.title = 'Doomed')
    EXECUTE FUNCTION kill_own_backend();
"""


async def test_an_update_cut_off_at_commit_is_outcome_unknown_and_retry_applies_once(
    kb: KbStack, app_database: AppDatabase, pg_cluster: PostgresCluster
) -> None:
    """Connection lost in COMMIT: "outcome unknown", never "nothing changed"; retrying is safe."""
    # Sessions act as the owning group (SET ROLE): let it signal its login roles' backends.
    await pg_cluster.execute(f"GRANT pg_signal_backend TO {quote_ident(app_database.group)}")
    async with Client(build_mcp_server(kb.context)) as client:
        added = await call_ok(client, "kb_add", {"title": "Coast", "content": _LONG})
        async with kb.source.acquire() as conn:
            await conn.execute(_KILL_AT_COMMIT)
        update = {"id": added["id"], "title": "Doomed"}
        text = await call_refused(client, "kb_update", update)
        assert "the outcome is unknown" in text, text
        assert "may or may not have been applied" in text
        assert "nothing was changed" not in text
        async with kb.source.acquire() as conn:
            await conn.execute("DROP TRIGGER kill_at_commit ON documents")
        retried = await call_ok(client, "kb_update", update)
        assert retried["changed"] == ["title"]
        again = await call_ok(client, "kb_update", update)
        assert (again["changed"], again["updated_at"]) == ([], retried["updated_at"])
        doc = await call_ok(client, "kb_get", {"id": added["id"]})
        assert doc["title"] == "Doomed"


async def test_a_write_that_wrote_nothing_is_rolled_back_and_never_unknown(
    kb: KbStack, app_database: AppDatabase, pg_cluster: PostgresCluster
) -> None:
    """committed() with Unwritten: no COMMIT is sent, so a dead connection changes no answer."""
    await pg_cluster.execute(f"GRANT pg_signal_backend TO {quote_ident(app_database.group)}")

    async def body(conn: AnyConnection) -> str | Unwritten[str]:
        await conn.execute("INSERT INTO documents (title, content) VALUES ('x', 'y')")
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return Unwritten("nothing to do")

    assert await committed(kb.source, "test", body) == "nothing to do"
    assert await kb.count("documents") == 0


@dataclass
class _ReleaseFails:
    """A connection source whose every release raises after the caller's block is done."""

    inner: Any
    releases: int = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[AnyConnection]:
        async with self.inner.acquire() as conn:
            yield conn
        self.releases += 1
        raise ConnectionResetError("release failed")


async def test_a_failed_release_after_commit_does_not_fail_the_update(kb: KbStack) -> None:
    """The update committed, then giving the connection back failed: it is reported applied."""
    added = await kb.store.add_document(title="Coast", content=_LONG, tags=[], metadata={})
    source = _ReleaseFails(kb.source)
    reviser = DocumentReviser(source, kb.embedder, attempts=1)  # one connection: the write's
    revision = await reviser.revise(added.id, content=_LONG + "\n\nA new ending.")
    assert revision is not None
    assert (revision.changed, revision.embedded) == (("content",), 1)
    assert source.releases == 1
    doc = await kb.store.get_document(added.id)
    assert doc is not None
    assert doc.content == _LONG + "\n\nA new ending."
    assert doc.updated_at == revision.updated_at
