"""An httpx client whose API key comes from Secrets Manager and is hot-swapped on rotation.

A copyable example of reusing `kb_mcp.hotswap` and `kb_mcp.secrets` in another async
service. The HTTP client is `httpx2` (the httpx API under its own name; it is what the
project's `openai` and `mcp` dependencies install, plain `httpx` is not a dependency).

    python docs/examples/httpx_hot_swap.py \\
        --secret-name partner/prod/api-key --base-url https://api.partner.example \\
        [--region us-east-1] [--endpoint-url http://127.0.0.1:5000] [--path /v1/ping]

Each option has an environment variable (`PARTNER_SECRET_NAME`, `PARTNER_BASE_URL`,
`AWS_REGION`, `AWS_ENDPOINT_URL` for an emulator such as moto). The secret holds the key
as a plain string (or `{"api_key": "..."}`), parsed by `OpenAIKeySecret`.

What happens on rotation: the `Refresher` re-reads AWSCURRENT every interval (or now, on
`refresh_now()`), builds a client with the new key, probes it, swaps it in and closes the
old one once its calls finish. A call refused with 401 (the partner revoked the key
before the refresher polled) asks the refresher for the newer version and is retried once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx2
from secretswap import HotSwap, Observer, Refresher, background_group

from kb_mcp.errors import RotationError
from kb_mcp.secrets.aws import AwsSecretsManagerProvider
from kb_mcp.secrets.schemas import OpenAIKeySecret

__all__ = ["PartnerClient", "PartnerClientAdapter", "PartnerConfig", "main", "open_partner"]


@dataclass(frozen=True, slots=True)
class PartnerConfig:
    """Where the key lives and where the partner API is."""

    secret_name: str
    base_url: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    """Secrets Manager endpoint override (an emulator); None: the region's AWS endpoint."""
    refresh_interval_s: float = 300.0
    timeout_s: float = 10.0


@dataclass
class PartnerClientAdapter:
    """How `HotSwap` builds, probes and closes one `httpx2.AsyncClient` per key version."""

    config: PartnerConfig
    probe_path: str = "/v1/ping"
    _tls: ssl.SSLContext | None = field(default=None, repr=False)

    async def build(self, value: OpenAIKeySecret, version_id: str) -> httpx2.AsyncClient:
        if self._tls is None:  # one TLS context for every client: loading CAs is slow
            self._tls = httpx2.create_ssl_context()
        key = value.api_key.get_secret_value()
        return httpx2.AsyncClient(
            base_url=self.config.base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=self.config.timeout_s,
            verify=self._tls,
        )

    async def probe(self, client: httpx2.AsyncClient, version_id: str) -> None:
        """The new key must work before it goes into service; else the old one stays."""
        try:
            response = await client.get(self.probe_path)
            response.raise_for_status()
        except httpx2.HTTPError as exc:  # the core expects a KbMcpError from a probe
            raise RotationError(
                f"new key of secret {self.config.secret_name} version {version_id} failed "
                f"the probe ({type(exc).__name__})",
                secret_name=self.config.secret_name,
                version_id=version_id,
            ) from exc

    async def close(self, client: httpx2.AsyncClient) -> None:
        await client.aclose()

    async def terminate(self, client: httpx2.AsyncClient) -> None:
        await client.aclose()

    def is_auth_failure(self, exc: BaseException) -> bool:
        return isinstance(exc, httpx2.HTTPStatusError) and exc.response.status_code == 401

    def describe(self, client: httpx2.AsyncClient) -> dict[str, object]:
        return {"base_url": str(client.base_url)}


class PartnerClient:
    """Calls to the partner API, always on the client of the key version in service."""

    def __init__(
        self, swap: HotSwap[OpenAIKeySecret, httpx2.AsyncClient], refresher: Refresher
    ) -> None:
        self._swap = swap
        self._refresher = refresher

    @property
    def version_id(self) -> str | None:
        """The secret version whose key the calls use now (the refresher's record)."""
        return self._refresher.versions_in_service().get(self._swap.secret_name)

    async def get(self, path: str) -> httpx2.Response:
        """GET `path`; a 401 recovers through the refresher once, else `AuthFailed`."""

        async def call(client: httpx2.AsyncClient) -> httpx2.Response:
            response = await client.get(path)  # the body is read before the lease ends
            response.raise_for_status()
            return response

        return await self._swap.run(call)

    def refresh_now(self) -> None:
        """Re-read the secret now instead of at the next interval (a SIGHUP handler)."""
        self._refresher.trigger()


@asynccontextmanager
async def open_partner(
    config: PartnerConfig, *, observers: tuple[Observer, ...] = ()
) -> AsyncIterator[PartnerClient]:
    """The provider, the first client, and the refresher polling in the background.

    `observers` get every `HotSwapEvent` (poll, detected, swapped, closed). On the way out:
    the refresher stops, the current client drains and closes, then the provider.
    """
    stop = asyncio.Event()
    async with (
        AwsSecretsManagerProvider(
            region=config.region, endpoint_url=config.endpoint_url
        ) as provider,
        background_group() as tasks,  # owns the refresher and the drains of old clients
    ):
        refresher = Refresher(provider, interval_s=config.refresh_interval_s, observers=observers)
        swap = HotSwap(
            PartnerClientAdapter(config),
            config.secret_name,
            tasks=tasks,
            kind="partner.client",  # logs partner.client_swapped...
            recover=refresher.recover,
            observers=observers,
        )
        loaded = await provider.get_secret_json(config.secret_name, OpenAIKeySecret)
        await swap.start(loaded)  # read once at boot; the refresher owns it from here
        refresher.watch(loaded, swap)
        tasks.create_task(refresher.run(stop))
        try:
            yield PartnerClient(swap, refresher)
        finally:
            stop.set()
            await swap.aclose()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--secret-name", default=env("PARTNER_SECRET_NAME"))
    parser.add_argument("--base-url", default=env("PARTNER_BASE_URL"))
    parser.add_argument("--region", default=env("AWS_REGION", "us-east-1"))
    parser.add_argument("--endpoint-url", default=env("AWS_ENDPOINT_URL"))
    parser.add_argument("--path", default="/v1/ping", help="what to GET")
    args = parser.parse_args(argv)
    if not args.secret_name or not args.base_url:
        parser.error("--secret-name and --base-url (or their environment variables) are needed")
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    """One GET through the hot-swapped client; prints the status and the key version."""
    args = parse_args(argv)
    config = PartnerConfig(
        secret_name=args.secret_name,
        base_url=args.base_url,
        region=args.region,
        endpoint_url=args.endpoint_url,
    )
    async with open_partner(config) as partner:
        response = await partner.get(args.path)  # every call: partner.get(...)
        print(f"{response.status_code} with key version {partner.version_id}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
