"""Database: the hot-swapped asyncpg pool, migrations, and the document queries."""

from kb_mcp.db.pool import PoolManager
from kb_mcp.db.port import AnyConnection, ConnectionSource

__all__ = ["AnyConnection", "ConnectionSource", "PoolManager"]
