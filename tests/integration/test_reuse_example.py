"""The reuse example of docs/ARCHITECTURE.md (docs/examples/httpx_hot_swap.py), run for real.

Secrets Manager is moto in server mode; the partner API is a small Starlette app on
127.0.0.1 that accepts only the keys it has issued and not revoked. Rotations are driven
by `refresh_now()` (the refresher's own interval is an hour) or by a 401, and awaited
through the example's `Observer` hook, never a log line or a sleep.
"""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest
from pydantic import SecretStr
from secretswap import AuthFailed, HotSwapEvent
from secretswap.observer import EventKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kb_mcp.errors import RotationError
from kb_mcp.secrets.schemas import OpenAIKeySecret
from tests.support.fakes import fake_openai_key
from tests.support.knowledge_base import serve_asgi

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "httpx_hot_swap.py"
REGION = "us-east-1"
WORKERS = 8
CONCURRENT = 20
WAIT_S = 20.0


def _load_example() -> ModuleType:
    """Import the example by its path, as a reader would run it (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location("httpx_hot_swap", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations there
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:  # mypy checks docs.examples (pyproject), so the test is typed against it
    from docs.examples import httpx_hot_swap as example
else:
    example = _load_example()


class PartnerApi:
    """The partner: `GET /v1/ping` answers 200 to an issued, unrevoked key, else 401.

    It counts requests per key (`served_with`) and refusals; `wait_served(n)` returns once
    `n` requests were served in total. Runs on the test's event loop.
    """

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._by_key: Counter[str] = Counter()
        self.served = 0
        self.refused = 0
        self._progress = asyncio.Condition()
        self.app = Starlette(routes=[Route("/v1/ping", self._ping)])

    def issue(self, key: str) -> None:
        self._keys.add(key)

    def revoke(self, key: str) -> None:
        self._keys.discard(key)

    def served_with(self, key: str) -> int:
        return self._by_key[key]

    async def wait_served(self, total: int) -> None:
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: self.served >= total), WAIT_S)

    async def _ping(self, request: Request) -> JSONResponse:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or key not in self._keys:
            self.refused += 1
            return JSONResponse({"error": "invalid api key"}, status_code=401)
        self._by_key[key] += 1
        async with self._progress:
            self.served += 1
            self._progress.notify_all()
        return JSONResponse({"ok": True})


class Recorder:
    """An `Observer` that keeps every `HotSwapEvent` and lets the test await one."""

    def __init__(self) -> None:
        self.events: list[HotSwapEvent] = []
        self._waiters: list[tuple[Callable[[HotSwapEvent], bool], asyncio.Future[None]]] = []

    def __call__(self, event: HotSwapEvent) -> None:
        self.events.append(event)
        for matches, future in self._waiters:
            if not future.done() and matches(event):
                future.set_result(None)

    def of(self, kind: EventKind) -> list[HotSwapEvent]:
        return [e for e in self.events if e.kind == kind]

    async def wait(self, kind: EventKind, version_id: str) -> None:
        """Return once an event `kind` about `version_id` happened (or had already)."""

        def matches(event: HotSwapEvent) -> bool:
            return event.kind == kind and event.version_id == version_id

        if any(matches(e) for e in self.events):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((matches, future))
        await asyncio.wait_for(future, WAIT_S)


@dataclass
class Stored:
    """The partner key secret in moto, and what the example needs to reach it."""

    sm: Any
    name: str
    key: str
    version_id: str
    endpoint_url: str

    async def rotate(self, key: str) -> str:
        """Store `key` as the new AWSCURRENT version; its version id."""
        response = await self.sm.put_secret_value(SecretId=self.name, SecretString=key)
        return str(response["VersionId"])


@pytest.fixture
async def partner() -> AsyncIterator[tuple[PartnerApi, str]]:
    """The partner API served on 127.0.0.1:<free port>, and its base URL."""
    api = PartnerApi()
    async with serve_asgi(api.app) as base_url:
        yield api, base_url


@pytest.fixture
async def stored(aws_env: str, partner: tuple[PartnerApi, str]) -> AsyncIterator[Stored]:
    """A key issued by the partner and stored in moto under a per-test name."""
    key = fake_openai_key()
    partner[0].issue(key)
    name = f"partner/test-{secrets.token_hex(4)}/api-key"
    session = aioboto3.Session()
    async with session.client("secretsmanager", region_name=REGION, endpoint_url=aws_env) as sm:
        created = await sm.create_secret(Name=name, SecretString=key)
        yield Stored(sm, name, key, str(created["VersionId"]), aws_env)


def _config(stored: Stored, base_url: str) -> example.PartnerConfig:
    return example.PartnerConfig(
        secret_name=stored.name,
        base_url=base_url,
        region=REGION,
        endpoint_url=stored.endpoint_url,
        refresh_interval_s=3600.0,  # the refresher polls only when told to
    )


async def test_rotation_under_load_fails_no_call(
    partner: tuple[PartnerApi, str], stored: Stored
) -> None:
    """A rotation picked up by the refresher under load fails no call; the new key serves."""
    api, base_url = partner
    recorder = Recorder()
    failures: list[BaseException] = []
    calls = 0
    new_key = fake_openai_key()
    async with example.open_partner(_config(stored, base_url), observers=(recorder,)) as client:
        assert client.version_id == stored.version_id
        stop = asyncio.Event()

        async def worker() -> None:
            nonlocal calls
            while not stop.is_set():
                try:
                    await client.get("/v1/ping")
                except Exception as exc:  # counted: the assertion is that there are none
                    failures.append(exc)
                calls += 1

        async with asyncio.TaskGroup() as load:
            for _ in range(WORKERS):
                load.create_task(worker())
            await api.wait_served(100)  # under load on the old key
            api.issue(new_key)  # the partner's overlap: both keys valid
            new_version = await stored.rotate(new_key)
            client.refresh_now()
            await recorder.wait("swapped", new_version)
            await recorder.wait("closed", stored.version_id)  # old client drained, closed
            api.revoke(stored.key)  # from now on only the current key is accepted
            await api.wait_served(api.served + 100)  # still under load, new key only
            stop.set()
        after_load = api.served_with(new_key)
        response = await client.get("/v1/ping")
        assert client.version_id == new_version

    assert [type(e).__name__ for e in failures] == []
    assert calls >= 200
    assert response.status_code == 200
    assert api.refused == 0  # nothing used the revoked key, nothing needed a recovery
    assert api.served_with(new_key) == after_load + 1
    assert after_load >= 100
    assert [e.version_id for e in recorder.of("swapped")] == [new_version]
    assert len(recorder.of("poll")) == 1  # exactly the triggered round


async def test_revoked_key_recovers_through_the_refresher_once(
    partner: tuple[PartnerApi, str], stored: Stored
) -> None:
    """The partner revokes the old key before the refresher polls: calls recover once."""
    api, base_url = partner
    recorder = Recorder()
    new_key = fake_openai_key()
    async with example.open_partner(_config(stored, base_url), observers=(recorder,)) as client:
        assert (await client.get("/v1/ping")).status_code == 200
        api.issue(new_key)
        new_version = await stored.rotate(new_key)
        api.revoke(stored.key)  # before any poll: the next calls get 401
        responses = await asyncio.gather(*(client.get("/v1/ping") for _ in range(CONCURRENT)))
        assert client.version_id == new_version

    assert [r.status_code for r in responses] == [200] * CONCURRENT
    assert 1 <= api.refused <= CONCURRENT
    assert api.served_with(new_key) == CONCURRENT + 1  # the probe, then every call
    assert recorder.of("poll") == []  # the refresher never polled
    assert [e.version_id for e in recorder.of("detected")] == [new_version]  # one recovery
    assert [e.version_id for e in recorder.of("swapped")] == [new_version]


async def test_revoked_key_with_nothing_newer_fails_clearly(
    partner: tuple[PartnerApi, str], stored: Stored
) -> None:
    """A 401 with no newer version in Secrets Manager is `AuthFailed`; nothing swaps."""
    api, base_url = partner
    recorder = Recorder()
    async with example.open_partner(_config(stored, base_url), observers=(recorder,)) as client:
        api.revoke(stored.key)
        with pytest.raises(AuthFailed):
            await client.get("/v1/ping")
        assert client.version_id == stored.version_id
    assert api.refused == 1
    assert recorder.of("swapped") == []


async def test_a_key_refused_by_the_probe_keeps_the_old_one_serving(
    partner: tuple[PartnerApi, str], stored: Stored
) -> None:
    """A new version whose key the partner refuses is not swapped in; the refresher lives on."""
    api, base_url = partner
    recorder = Recorder()
    unissued, good = fake_openai_key(), fake_openai_key()
    async with example.open_partner(_config(stored, base_url), observers=(recorder,)) as client:
        bad_version = await stored.rotate(unissued)
        client.refresh_now()
        await recorder.wait("detected", bad_version)
        assert (await client.get("/v1/ping")).status_code == 200  # the old key still serves
        api.issue(good)
        good_version = await stored.rotate(good)
        client.refresh_now()
        await recorder.wait("swapped", good_version)
        assert (await client.get("/v1/ping")).status_code == 200

    assert [e.version_id for e in recorder.of("swapped")] == [good_version]
    assert api.refused >= 1  # the probe of the unissued key (again if a backoff poll ran)
    assert api.served_with(unissued) == 0


async def test_an_unreachable_partner_fails_the_probe_as_a_rotation_error() -> None:
    """A transport error in the probe is a `RotationError`, which the refresher handles."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # bound, never listening: connections are refused
        config = example.PartnerConfig(secret_name="partner/x", base_url=f"http://127.0.0.1:{port}")
        adapter = example.PartnerClientAdapter(config)
        client = await adapter.build(OpenAIKeySecret(api_key=SecretStr(fake_openai_key())), "v2")
        try:
            with pytest.raises(RotationError, match="failed the probe"):
                await adapter.probe(client, "v2")
        finally:
            await adapter.close(client)


async def test_main_reads_its_configuration_from_the_environment(
    partner: tuple[PartnerApi, str],
    stored: Stored,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`main()` with no arguments: secret, partner URL, region and endpoint from the env."""
    api, base_url = partner
    monkeypatch.setenv("PARTNER_SECRET_NAME", stored.name)
    monkeypatch.setenv("PARTNER_BASE_URL", base_url)
    assert await example.main([]) == 0
    assert capsys.readouterr().out.strip() == f"200 with key version {stored.version_id}"
    assert api.served_with(stored.key) == 1
