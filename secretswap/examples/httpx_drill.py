"""A drill of `httpx_hot_swap.py` against a partner API and a Secrets Manager (moto): calls
from 8 workers through 3 rotations, a 401 recovered, and a probe raising an exception that
is not secretswap's; prints one JSON line of figures, exits 1 if any call failed.

    python httpx_drill.py  # PARTNER_SECRET_NAME, PARTNER_BASE_URL, AWS_ENDPOINT_URL set

The partner has an admin route standing for its console: `POST /admin/keys` issues a key,
`DELETE /admin/keys` revokes one. Rotations are awaited through an observer, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys

import aioboto3
import httpx
from httpx_hot_swap import get, open_partner

from secretswap import HotSwapEvent

WORKERS = 8


class Swaps:
    """An observer: awaitable `swapped` / `closed` events by version."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self._changed = asyncio.Event()

    def __call__(self, event: HotSwapEvent) -> None:
        self.seen.add((event.kind, event.version_id))
        self._changed.set()

    async def wait(self, kind: str, version_id: str) -> None:
        while (kind, version_id) not in self.seen:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 30)


async def drill() -> dict[str, object]:
    name, base_url = os.environ["PARTNER_SECRET_NAME"], os.environ["PARTNER_BASE_URL"]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    swaps, failures, calls = Swaps(), [], 0
    async with (
        aioboto3.Session().client("secretsmanager", endpoint_url=endpoint) as sm,
        httpx.AsyncClient(base_url=base_url) as admin,
        open_partner(name, base_url, endpoint_url=endpoint, observers=(swaps,)) as partner,
    ):

        async def new_version(*, issue: bool = True) -> str:
            key = "pk-" + secrets.token_urlsafe(24)
            if issue:
                (await admin.post("/admin/keys", json={"key": key})).raise_for_status()
            return str((await sm.put_secret_value(SecretId=name, SecretString=key))["VersionId"])

        async def current_key() -> str:
            value = await sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
            return str(value["SecretString"])

        stop = asyncio.Event()

        async def worker() -> None:
            nonlocal calls
            while not stop.is_set():
                try:
                    await partner.run(lambda client: get(client, "/v1/ping"))
                except Exception as exc:  # every failure is counted
                    failures.append(type(exc).__name__)
                calls += 1

        workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
        for _ in range(3):  # rotations: issue, store, refresh, retire the old key
            old_version, old_key = partner.version_id, await current_key()
            version = await new_version()
            partner.refresh()
            await swaps.wait("swapped", version)
            await swaps.wait("closed", old_version)
            await admin.request("DELETE", "/admin/keys", json={"key": old_key})
        # The partner revokes the key before the refresher polled: calls get 401, recover.
        revoked, version = await current_key(), await new_version()
        await admin.request("DELETE", "/admin/keys", json={"key": revoked})
        await swaps.wait("swapped", version)
        # A version whose key the partner never issued: the probe raises httpx's error.
        serving = partner.version_id
        unusable = await new_version(issue=False)
        await partner.refresher.refresh_all()
        rejected = partner.refresher.rejected()
        assert partner.version_id == serving, "the old client must keep serving"
        stop.set()
        await asyncio.gather(*workers)
    return {
        "calls": calls,
        "failed": len(failures),
        "failures": sorted(set(failures)),
        "swaps": sum(1 for kind, _ in swaps.seen if kind == "swapped"),
        "rejected": [(r.version_id == unusable, r.cause) for r in rejected],
        "kb_mcp_importable": "kb_mcp" in sys.modules,
    }


if __name__ == "__main__":
    figures = asyncio.run(drill())
    print(json.dumps(figures))
    raise SystemExit(1 if figures["failed"] else 0)
