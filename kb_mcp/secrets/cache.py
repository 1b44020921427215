"""The TTL cache of secret versions (single flight, stale on error): `secretswap.cache`,
under the name kb-mcp's providers and tests use."""

from secretswap.cache import SecretCache

__all__ = ["SecretCache"]
