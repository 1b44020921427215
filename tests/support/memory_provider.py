"""`MemoryProvider`: the in-memory `SecretsProvider` of the hot-swap library's public
testing module (`secretswap.testing`), under the name kb-mcp's tests use."""

from secretswap.testing import MemoryProvider

__all__ = ["MemoryProvider"]
