"""Rotation paths other than the happy one: bad versions, revoked credentials, rollbacks."""

from __future__ import annotations

import asyncio

import pytest

from kb_mcp.errors import DatabaseAuthError, EmbeddingAuthError
from kb_mcp.runtime.supervisor import boot_runtime
from tests.conftest import CapturedLogs
from tests.support import pg_roles
from tests.support.fakes import fake_openai_key, fake_password
from tests.support.runtime_env import RuntimeEnv

MODEL = "text-embedding-3-small"


@pytest.mark.parametrize("problem", ["wrong_password", "missing_role", "nologin", "malformed"])
async def test_invalid_new_credentials_keep_the_old_pool_serving(
    env: RuntimeEnv, captured_logs: CapturedLogs, problem: str
) -> None:
    """A bad new version is logged and counted; the old pool serves; a later good one is used."""
    async with boot_runtime(env.settings()) as runtime:
        before = runtime.pool.version_id
        if problem == "wrong_password":
            value = env.postgres_json("b", password=fake_password())
        elif problem == "missing_role":
            value = env.postgres_json("b", username="no_such_role_" + env.app.database)
        elif problem == "nologin":
            await pg_roles.set_login(env.pg, env.app.user_b, False)
            value = env.postgres_json("b")
        else:
            value = '{"username": "x", "port": "not-a-number"'
        bad_version = await env.put(env.postgres_secret, value)
        assert not await runtime.refresher.refresh_one(env.postgres_secret)
        assert runtime.pool.version_id == before
        assert await runtime.pool.fetchval("SELECT 1") == 1
        assert runtime.metrics.total("RotationFailures") == 1
        failed = captured_logs.events("secret.rotation_failed")
        assert failed
        assert failed[0]["version_id"] == bad_version

        if problem == "nologin":
            await pg_roles.set_login(env.pg, env.app.user_b, True)
        good_version = await env.rotate_postgres()
        assert await runtime.refresher.refresh_one(env.postgres_secret)
        assert runtime.pool.version_id == good_version
        assert await runtime.pool.fetchval("SELECT session_user") == env.app.user_b


async def test_revoked_credentials_before_the_poll_recover_on_the_next_connection(
    env: RuntimeEnv,
) -> None:
    """Old password revoked and sessions cut: the auth failure refreshes and the request works."""
    async with boot_runtime(env.settings(db_pool_min_size=0)) as runtime:
        assert await runtime.pool.fetchval("SELECT 1") == 1
        new_password = fake_password()
        await pg_roles.set_password(env.pg, env.app.user_a, new_password)
        env.passwords["a"] = new_password
        version = await env.put(env.postgres_secret, env.postgres_json("a"))
        await pg_roles.terminate_backends(env.pg, user=env.app.user_a)
        # The poll has not run (TTL 300 s): only the auth failure can bring the new version.
        assert await runtime.pool.fetchval("SELECT 1") == 1
        assert runtime.pool.version_id == version
        assert runtime.metrics.total("DatabaseAuthRecoveries") == 1


async def test_single_user_rotation_window_is_served_through_awspending(env: RuntimeEnv) -> None:
    """Password changed, AWSCURRENT not yet moved: the AWSPENDING version is used."""
    async with boot_runtime(env.settings(db_pool_min_size=0)) as runtime:
        new_password = fake_password()
        pending = await env.put(
            env.postgres_secret,
            env.postgres_json("a", password=new_password),
            stages=["AWSPENDING"],
        )
        await pg_roles.set_password(env.pg, env.app.user_a, new_password)
        await pg_roles.terminate_backends(env.pg, user=env.app.user_a)
        results = await asyncio.gather(*(runtime.pool.fetchval("SELECT 1") for _ in range(20)))
        assert results == [1] * 20
        assert runtime.pool.version_id == pending
        # Finishing the rotation moves AWSCURRENT to the version already in service: no swap.
        await env.move_current(env.postgres_secret, pending)
        assert not await runtime.refresher.refresh_one(env.postgres_secret)
        assert runtime.pool.version_id == pending


async def test_database_auth_failure_with_nothing_newer_is_a_clear_error(env: RuntimeEnv) -> None:
    """No new version and no AWSPENDING: DatabaseAuthError naming the secret, no value."""
    async with boot_runtime(env.settings(db_pool_min_size=0)) as runtime:
        await pg_roles.set_password(env.pg, env.app.user_a, fake_password())
        await pg_roles.terminate_backends(env.pg, user=env.app.user_a)
        with pytest.raises(DatabaseAuthError) as caught:
            await runtime.pool.fetchval("SELECT 1")
        assert env.postgres_secret in str(caught.value)
        assert env.passwords["a"] not in str(caught.value)


async def test_version_rollback_swaps_back(env: RuntimeEnv) -> None:
    """Moving AWSCURRENT back to the old version is a rotation like any other."""
    async with boot_runtime(env.settings()) as runtime:
        original = runtime.pool.version_id
        assert original is not None
        rotated = await env.rotate_postgres()
        assert await runtime.refresher.refresh_one(env.postgres_secret)
        assert runtime.pool.version_id == rotated
        await env.move_current(env.postgres_secret, original)
        assert await runtime.refresher.refresh_one(env.postgres_secret)
        assert runtime.pool.version_id == original
        assert await runtime.pool.fetchval("SELECT session_user") == env.app.user_a


async def test_openai_401_with_rotated_key_refreshes_swaps_and_retries(env: RuntimeEnv) -> None:
    """The old key is revoked and a new one stored: the call succeeds after one refresh."""
    async with boot_runtime(env.settings()) as runtime:
        old_key = env.openai_key
        _key, version = await env.rotate_openai()
        env.openai.revoke_key(old_key)
        vectors = await runtime.openai.create_embeddings(["hello"], model=MODEL, dimensions=64)
        assert len(vectors) == 1
        assert runtime.openai.version_id == version
        assert env.openai.unauthorized_total == 1


async def test_openai_401_without_a_new_version_is_a_clear_error(env: RuntimeEnv) -> None:
    """Key revoked and no new version: EmbeddingAuthError naming the secret, never the key."""
    async with boot_runtime(env.settings()) as runtime:
        env.openai.revoke_key(env.openai_key)
        with pytest.raises(EmbeddingAuthError) as caught:
            await runtime.openai.create_embeddings(["hello"], model=MODEL, dimensions=64)
        assert env.openai_secret in str(caught.value)
        assert env.openai_key not in str(caught.value)


async def test_rejected_new_openai_key_does_not_replace_the_working_one(env: RuntimeEnv) -> None:
    """A new key the probe rejects is logged and counted; the old client keeps serving."""
    async with boot_runtime(env.settings()) as runtime:
        before = runtime.openai.version_id
        await env.put(env.openai_secret, fake_openai_key())  # never allowed at the endpoint
        assert not await runtime.refresher.refresh_one(env.openai_secret)
        assert runtime.openai.version_id == before
        assert runtime.metrics.total("RotationFailures") == 1
        vectors = await runtime.openai.create_embeddings(["still"], model=MODEL, dimensions=64)
        assert len(vectors[0]) == 64


async def test_concurrent_auth_failures_cause_one_refresh(env: RuntimeEnv) -> None:
    """Fifty requests failing on a revoked key at once trigger a single forced refresh."""
    async with boot_runtime(env.settings()) as runtime:
        calls_before = runtime.metrics.total("SecretsApiCalls")
        old_key = env.openai_key
        await env.rotate_openai()
        env.openai.revoke_key(old_key)
        results = await asyncio.gather(
            *(
                runtime.openai.create_embeddings([f"text {i}"], model=MODEL, dimensions=64)
                for i in range(50)
            )
        )
        assert len(results) == 50
        assert runtime.metrics.total("SecretsApiCalls") - calls_before == 1
