"""Replica regions and failover order: `secretswap.aws.regions`, under kb-mcp's name."""

from secretswap.aws.regions import Region, RegionFailover

__all__ = ["Region", "RegionFailover"]
