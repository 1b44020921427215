"""The real local servers behind the tests and `kb-mcp dev`: PostgreSQL, fake OpenAI, moto."""

from __future__ import annotations

import asyncio
import math
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aioboto3
import asyncpg
import openai
import pytest

from kb_mcp.devstack.hashing import hashed_embedding
from kb_mcp.devstack.moto_server import MotoSecretsServer
from kb_mcp.devstack.postgres import PostgresCluster, PostgresClusterError
from tests.plugins.servers import AppDatabase
from tests.support import pg_roles
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.fakes import fake_openai_key, fake_password


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def _connect(
    cluster: PostgresCluster, user: str, password: str, database: str = "postgres"
) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=cluster.host, port=cluster.port, user=user, password=password, database=database
    )


async def _can_login(cluster: PostgresCluster, user: str, password: str) -> bool:
    try:
        conn = await _connect(cluster, user, password)
    except asyncpg.InvalidPasswordError:
        return False
    await conn.close()
    return True


# ------------------------------------------------------------------ PostgreSQL


async def test_superuser_needs_the_right_password(pg_cluster: PostgresCluster) -> None:
    """The cluster uses SCRAM: the generated superuser password works, a wrong one is refused."""
    conn = await _connect(pg_cluster, pg_cluster.superuser, pg_cluster.superuser_password)
    try:
        assert await conn.fetchval("SHOW password_encryption") == "scram-sha-256"
        assert int((await conn.fetchval("SHOW server_version")).split(".")[0]) >= 16
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _connect(pg_cluster, pg_cluster.superuser, fake_password())


async def test_vector_extension_answers_a_cosine_query(pg_cluster: PostgresCluster) -> None:
    """create_database installs pgvector, and the cosine distance operator works in it."""
    name = f"vec_{secrets.token_hex(4)}"
    await pg_cluster.create_database(name, owner=pg_cluster.superuser)
    await pg_cluster.create_database(name, owner=pg_cluster.superuser)  # idempotent
    rows = await pg_cluster.fetch(
        "SELECT '[1,0]'::vector <=> '[0,1]'::vector AS distance", database=name
    )
    assert rows[0]["distance"] == pytest.approx(1.0)
    await pg_cluster.execute(f"DROP DATABASE {name}")


async def test_role_password_change_and_login_toggle(pg_cluster: PostgresCluster) -> None:
    """create_role alters an existing role; NOLOGIN is refused with SQLSTATE 28000."""
    role, first, second = f"r_{secrets.token_hex(4)}", fake_password(), fake_password()
    await pg_cluster.create_role(role, first)
    assert await _can_login(pg_cluster, role, first)
    await pg_cluster.create_role(role, second)
    assert not await _can_login(pg_cluster, role, first)
    assert await _can_login(pg_cluster, role, second)
    await pg_roles.set_login(pg_cluster, role, False)
    with pytest.raises(asyncpg.PostgresError) as refused:
        await _connect(pg_cluster, role, second)
    assert refused.value.sqlstate == "28000"
    await pg_roles.set_login(pg_cluster, role, True)
    await pg_roles.set_password(pg_cluster, role, first)
    assert await _can_login(pg_cluster, role, first)
    await pg_roles.drop_role(pg_cluster, role)
    assert not await _can_login(pg_cluster, role, first)


async def test_awkward_names_and_passwords_are_quoted(pg_cluster: PostgresCluster) -> None:
    """Quotes, spaces and backslashes in role names and passwords are taken literally."""
    role = f'we\'ird "role" {secrets.token_hex(3)}'
    password = fake_password() + "'; DROP ROLE x; --\\n"
    await pg_cluster.create_role(role, password)
    assert await _can_login(pg_cluster, role, password)
    non_ascii = "pässwörd-" + fake_password()  # sent as an escaped literal, not a verifier
    await pg_roles.set_password(pg_cluster, role, non_ascii)
    assert await _can_login(pg_cluster, role, non_ascii)
    await pg_roles.drop_role(pg_cluster, role)


async def test_terminate_backends_cuts_only_that_users_sessions(
    pg_cluster: PostgresCluster, app_database: AppDatabase
) -> None:
    """terminate_backends ends the sessions of one user and reports how many it ended."""
    conns = [
        await _connect(pg_cluster, *app_database.credentials("a"), app_database.database)
        for _ in range(2)
    ]
    other = await _connect(pg_cluster, *app_database.credentials("b"), app_database.database)
    try:
        assert await pg_roles.connection_count(pg_cluster, user=app_database.user_a) == 2
        assert await pg_roles.terminate_backends(pg_cluster, user=app_database.user_a) == 2
        assert await pg_roles.connection_count(pg_cluster, user=app_database.user_a) == 0
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await conns[0].fetchval("SELECT 1")
        assert await other.fetchval("SELECT 1") == 1
    finally:
        for conn in [*conns, other]:
            conn.terminate()


async def test_rotation_roles_share_tables(
    pg_cluster: PostgresCluster, app_database: AppDatabase
) -> None:
    """Tables made by one rotation role belong to the group; the other can write and alter them."""
    first = await _connect(pg_cluster, *app_database.credentials("a"), app_database.database)
    try:
        await first.execute("CREATE TABLE docs (id bigserial PRIMARY KEY, v vector(2))")
        await first.execute("INSERT INTO docs (v) VALUES ('[1,0]')")
    finally:
        await first.close()
    second = await _connect(pg_cluster, *app_database.credentials("b"), app_database.database)
    try:
        await second.execute("INSERT INTO docs (v) VALUES ('[0,1]')")
        await second.execute("ALTER TABLE docs ADD COLUMN title text")
        assert await second.fetchval("SELECT count(*) FROM docs") == 2
        owner = await second.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'docs'")
        assert owner == app_database.group
    finally:
        await second.close()


def test_restart_reuses_the_stored_superuser_password() -> None:
    """A second PostgresCluster on the same data folder starts without initdb and logs in.

    A fixed port that is taken fails with a clear error instead of hanging.
    """
    base = Path(tempfile.mkdtemp(prefix="kbpgr-"))
    base.chmod(0o711)
    try:
        with PostgresCluster(base / "data", durable=False, max_connections=20) as cluster:
            password = cluster.superuser_password
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = PostgresCluster(base / "data", port=taken.getsockname()[1])
            with pytest.raises(PostgresClusterError, match="already in use"):
                busy.start()
        with PostgresCluster(base / "data", durable=False) as again:
            assert again.superuser_password == password
            rows = asyncio.run(again.fetch("SHOW max_connections"))
            assert rows[0][0] == "200"
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- fake OpenAI


@pytest.fixture
async def client(
    fake_openai: FakeOpenAIServer, openai_api_key: str
) -> AsyncIterator[openai.AsyncOpenAI]:
    """An SDK client for the fake server that does not retry."""
    sdk = openai.AsyncOpenAI(api_key=openai_api_key, base_url=fake_openai.base_url, max_retries=0)
    yield sdk
    await sdk.close()


async def test_sdk_embeds_one_text_in_base64_and_float(client: openai.AsyncOpenAI) -> None:
    """The SDK's default (base64) and float encodings both decode to the hashed embedding."""
    text = "rotating database credentials"
    default = await client.embeddings.create(model="text-embedding-3-small", input=text)
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input=text, encoding_format="float"
    )
    expected = hashed_embedding(text, 1536)
    assert len(default.data) == 1
    assert default.data[0].embedding == pytest.approx(expected, abs=1e-6)
    assert floats.data[0].embedding == pytest.approx(expected)
    assert default.usage.prompt_tokens == 3


async def test_sdk_embeds_a_batch_with_dimensions(client: openai.AsyncOpenAI) -> None:
    """A batch comes back in order, with the requested number of unit-length dimensions."""
    texts = ["first text", "second text", "third"]
    response = await client.embeddings.create(
        model="text-embedding-3-large", input=texts, dimensions=256
    )
    assert [item.index for item in response.data] == [0, 1, 2]
    for item, text in zip(response.data, texts, strict=True):
        assert len(item.embedding) == 256
        assert math.fsum(x * x for x in item.embedding) == pytest.approx(1.0, abs=1e-5)
        assert item.embedding == pytest.approx(hashed_embedding(text, 256), abs=1e-6)


async def test_sdk_lists_and_retrieves_models(client: openai.AsyncOpenAI) -> None:
    """models.list and models.retrieve return the embedding models; unknown ids are 404."""
    ids = [model.id async for model in client.models.list()]
    assert "text-embedding-3-small" in ids
    assert (await client.models.retrieve("text-embedding-3-small")).object == "model"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


async def test_revoked_key_gets_401_without_echo(
    fake_openai: FakeOpenAIServer, openai_api_key: str, client: openai.AsyncOpenAI
) -> None:
    """A revoked key raises AuthenticationError; the error body never contains the key."""
    await client.embeddings.create(model="text-embedding-3-small", input="ok")
    fake_openai.revoke_key(openai_api_key)
    with pytest.raises(openai.AuthenticationError) as refused:
        await client.embeddings.create(model="text-embedding-3-small", input="refused")
    assert refused.value.code == "invalid_api_key"
    assert openai_api_key not in str(refused.value.body) + str(refused.value)
    assert fake_openai.unauthorized_total == 1
    assert fake_openai.requests_total == 2
    replacement = fake_openai_key()
    fake_openai.set_keys([replacement])
    rotated = client.with_options(api_key=replacement)
    assert (await rotated.embeddings.create(model="text-embedding-3-small", input="x")).data


async def test_fail_next_fails_then_recovers(
    fake_openai: FakeOpenAIServer, openai_api_key: str, client: openai.AsyncOpenAI
) -> None:
    """fail_next makes exactly n requests fail with the status; the SDK's retries get through."""
    fake_openai.fail_next(1, status=503)
    with pytest.raises(openai.InternalServerError):
        await client.embeddings.create(model="text-embedding-3-small", input="x")
    fake_openai.fail_next(2, status=500, retry_after_s=0.01)
    retrying = openai.AsyncOpenAI(
        api_key=openai_api_key, base_url=fake_openai.base_url, max_retries=2
    )
    try:
        response = await retrying.embeddings.create(model="text-embedding-3-small", input="x")
    finally:
        await retrying.close()
    assert response.data
    assert fake_openai.injected_failures_total == 3
    assert fake_openai.requests_total == 4


async def test_bad_inputs_are_400(client: openai.AsyncOpenAI) -> None:
    """Empty strings, token arrays and more than 2048 inputs are refused with 400."""
    for bad in ("", ["fine", ""], [1, 2, 3], [[1, 2]], ["x"] * 2049):
        with pytest.raises(openai.BadRequestError):
            await client.embeddings.create(model="text-embedding-3-small", input=bad)


async def test_latency_delays_embeddings(
    fake_openai: FakeOpenAIServer, client: openai.AsyncOpenAI
) -> None:
    """latency_s delays every embeddings request by at least that long."""
    fake_openai.latency_s = 0.2
    started = time.monotonic()
    await client.embeddings.create(model="text-embedding-3-small", input="slow")
    assert time.monotonic() - started >= 0.2


# -------------------------------------------------------------------- hashing


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    """Hashed embeddings are deterministic, unit-length, and rank shared words higher."""
    a = hashed_embedding("rotate the postgres password every month", 512)
    b = hashed_embedding("rotate the postgres password weekly", 512)
    c = hashed_embedding("cats enjoy sleeping in warm sunlight", 512)
    assert a == hashed_embedding("Rotate the Postgres password every month!", 512)
    assert math.fsum(x * x for x in a) == pytest.approx(1.0)
    assert _cosine(a, b) > 0.5 > _cosine(a, c)
    empty = hashed_embedding("", 4)
    assert empty == hashed_embedding("  ... ", 4)
    assert math.fsum(x * x for x in empty) == pytest.approx(1.0)


def test_query_ranks_its_subject_first() -> None:
    """A query about one document's subject ranks that document above the others."""
    docs = {
        "rotation": "secrets manager rotates the database password with a lambda function",
        "vectors": "pgvector stores embeddings and answers cosine similarity queries",
        "cats": "a cat sleeps most of the day and hunts at night",
    }
    query = hashed_embedding("how does the database password get rotated", 1536)
    ranked = sorted(docs, key=lambda k: -_cosine(query, hashed_embedding(docs[k], 1536)))
    assert ranked[0] == "rotation"


# ----------------------------------------------------------------------- moto


async def test_moto_round_trip_with_aioboto3(aws_env: str) -> None:
    """aioboto3 creates and reads back a secret at AWSCURRENT through the moto server."""
    value = fake_password()
    session = aioboto3.Session()
    async with session.client("secretsmanager", endpoint_url=aws_env) as sm:
        created = await sm.create_secret(Name="kb-mcp/dev/openai-api-key", SecretString=value)
        got = await sm.get_secret_value(
            SecretId="kb-mcp/dev/openai-api-key", VersionStage="AWSCURRENT"
        )
    assert got["SecretString"] == value
    assert got["VersionId"] == created["VersionId"]


async def test_moto_reset_forgets_secrets(aws_env: str, moto_server: MotoSecretsServer) -> None:
    """reset() empties moto, so one test never sees another's secrets."""
    session = aioboto3.Session()
    async with session.client("secretsmanager", endpoint_url=aws_env) as sm:
        await sm.create_secret(Name="kb-mcp/dev/postgres-credentials", SecretString="{}")
        await asyncio.to_thread(moto_server.reset)
        assert (await sm.list_secrets())["SecretList"] == []
