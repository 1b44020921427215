"""The refresher (`secretswap.refresher`), under the name kb-mcp's modules and tests use."""

from secretswap.refresher import (
    MIN_BACKOFF_S,
    RECOVERY_WINDOW_S,
    Refresher,
    RejectedVersion,
    SecretWatcher,
)

__all__ = ["MIN_BACKOFF_S", "RECOVERY_WINDOW_S", "Refresher", "RejectedVersion", "SecretWatcher"]
