"""An httpx client whose API key lives in Secrets Manager, hot-swapped on rotation.

    pip install 'secretswap[aws]' httpx
    python httpx_hot_swap.py --secret-name partner/prod/api-key --base-url https://api.partner.example

The secret holds the key as a plain string (or `{"api_key": "..."}`). Every call goes
through `partner.run(...)`: on the client of the key in service, and once more on a newer
key if the partner answers 401. A new version is probed (`GET /v1/ping`) before it goes into
service; if the probe fails, whatever it raises, the old client keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx

from secretswap import ApiKeySecret, Handle, Observer, hot_swapped
from secretswap.aws import AwsSecretsManagerProvider


class PartnerClients:
    """How to build, probe and close one `httpx.AsyncClient` per key version."""

    def __init__(self, base_url: str, probe_path: str = "/v1/ping") -> None:
        self.base_url = base_url
        self.probe_path = probe_path

    async def build(self, secret: ApiKeySecret, version_id: str) -> httpx.AsyncClient:
        key = secret.api_key.get_secret_value()
        return httpx.AsyncClient(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"})

    async def probe(self, client: httpx.AsyncClient, version_id: str) -> None:
        (await client.get(self.probe_path)).raise_for_status()

    async def close(self, client: httpx.AsyncClient) -> None:
        await client.aclose()

    def is_auth_failure(self, exc: BaseException) -> bool:
        return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 401


@asynccontextmanager
async def open_partner(
    secret_name: str,
    base_url: str,
    *,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    observers: tuple[Observer, ...] = (),
) -> AsyncIterator[Handle[httpx.AsyncClient]]:
    """The partner client, kept on the newest key (polled hourly, or `refresh()`)."""
    async with (
        AwsSecretsManagerProvider(region=region, endpoint_url=endpoint_url) as secrets,
        hot_swapped(
            PartnerClients(base_url),
            secret_name,
            ApiKeySecret,
            secrets,
            kind="partner.client",
            refresh_interval_s=3600.0,
            observers=observers,
        ) as partner,
    ):
        yield partner


async def get(client: httpx.AsyncClient, path: str) -> int:
    """One call: a 401 raises, so the handle retries it on a newer key."""
    response = await client.get(path)
    response.raise_for_status()
    return response.status_code


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GET through a hot-swapped partner client")
    parser.add_argument("--secret-name", default=os.environ.get("PARTNER_SECRET_NAME"))
    parser.add_argument("--base-url", default=os.environ.get("PARTNER_BASE_URL"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--path", default="/v1/ping")
    args = parser.parse_args(argv)
    if not args.secret_name or not args.base_url:
        parser.error("--secret-name and --base-url (or their environment variables) are needed")
    async with open_partner(
        args.secret_name, args.base_url, region=args.region, endpoint_url=args.endpoint_url
    ) as partner:
        status = await partner.run(lambda client: get(client, args.path))
        print(f"{status} with key version {partner.version_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
