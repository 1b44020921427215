"""Logging through the standard library, as httpx and asyncpg do: the application picks
the handler.

Each record's message is an event name (`secret.rotation_failed`, `db.pool_swapped`) and
its fields are attributes of the record (`record.secret`, `record.version_id`), given as
`extra`: a structured pipeline (structlog's `ProcessorFormatter`, a JSON formatter) lifts
them into the event. Fields never hold a secret value; an exception that is not the
library's is named by its class only.
"""

from __future__ import annotations

import logging

__all__ = ["EventLogger"]


class EventLogger:
    """A `logging.Logger` called with an event name and keyword fields."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def info(self, event: str, **fields: object) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: object) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: object) -> None:
        self._log(logging.ERROR, event, fields)

    def _log(self, level: int, event: str, fields: dict[str, object]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra=fields, stacklevel=3)
