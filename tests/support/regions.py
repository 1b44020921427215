"""Two Secrets Manager regions for failover tests: a primary and a replica, each its own
moto server on 127.0.0.1, with helpers to write a secret to both (same `VersionId`, as
Secrets Manager replication does) and to kill and revive the primary.

moto keeps its state per region in process-wide backends, so the primary's secrets live
through a kill: reviving it on the same port is a region coming back with its data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3

from kb_mcp.devstack.moto_server import MotoSecretsServer

__all__ = ["PRIMARY", "REPLICA", "TwoRegions", "open_two_regions"]

PRIMARY = "us-east-1"
REPLICA = "us-west-2"


@dataclass
class TwoRegions:
    """A primary region that can be killed and revived, and one replica region."""

    primary: MotoSecretsServer
    replica: MotoSecretsServer
    clients: dict[str, Any]
    primary_endpoint_url: str
    replica_endpoint_url: str

    def settings_overrides(self) -> dict[str, Any]:
        """Settings pointing at both regions (the primary's endpoint and the replica's)."""
        return {
            "aws_region": PRIMARY,
            "aws_endpoint_url": self.primary_endpoint_url,
            "secrets_replica_regions_list": REPLICA,
            "secrets_region_endpoints_list": f"{REPLICA}={self.replica_endpoint_url}",
        }

    async def create(self, name: str, value: str, *, regions: tuple[str, ...] = ()) -> str:
        """Create `name` in `regions` (default both) with one VersionId; return it."""
        version = str(uuid.uuid4())
        for region in regions or (PRIMARY, REPLICA):
            await self.clients[region].create_secret(
                Name=name, SecretString=value, ClientRequestToken=version
            )
        return version

    async def replicate(self, name: str) -> str:
        """Copy the primary's AWSCURRENT version of `name` to the replica (same VersionId)."""
        current = await self.clients[PRIMARY].get_secret_value(
            SecretId=name, VersionStage="AWSCURRENT"
        )
        version = str(current["VersionId"])
        await self.clients[REPLICA].create_secret(
            Name=name, SecretString=current["SecretString"], ClientRequestToken=version
        )
        return version

    async def put(self, name: str, value: str) -> str:
        """A new AWSCURRENT version in both regions (a rotation, replicated)."""
        version = str(uuid.uuid4())
        for region in (PRIMARY, REPLICA):
            await self.clients[region].put_secret_value(
                SecretId=name, SecretString=value, ClientRequestToken=version
            )
        return version

    async def kill_primary(self) -> None:
        """Stop the primary's server: its endpoint refuses connections."""
        await asyncio.to_thread(self.primary.stop)

    async def replica_down(self) -> None:
        """Stop the replica's server too (every region unreachable)."""
        await asyncio.to_thread(self.replica.stop)

    async def revive_primary(self) -> None:
        """Start the primary again on the same port, with the secrets it had."""
        await asyncio.to_thread(self.primary.start)


@asynccontextmanager
async def open_two_regions() -> AsyncIterator[TwoRegions]:
    """Start both servers (fake AWS credentials must be in the environment: `aws_env`)."""
    primary, replica = MotoSecretsServer(), MotoSecretsServer()
    async with AsyncExitStack() as stack:
        for server in (primary, replica):
            await asyncio.to_thread(server.start)
            stack.callback(server.stop)
        session = aioboto3.Session()
        clients: dict[str, Any] = {}
        for region, server in ((PRIMARY, primary), (REPLICA, replica)):
            clients[region] = await stack.enter_async_context(
                session.client(
                    "secretsmanager", region_name=region, endpoint_url=server.endpoint_url
                )
            )
        try:
            yield TwoRegions(primary, replica, clients, primary.endpoint_url, replica.endpoint_url)
        finally:
            # One process-wide moto state: resetting through either server empties both.
            running = primary if _is_running(primary) else replica
            if _is_running(running):
                await asyncio.to_thread(running.reset)


def _is_running(server: MotoSecretsServer) -> bool:
    try:
        _ = server.port
    except RuntimeError:
        return False
    return True
