"""Our errors as MCP tool errors: the one place a failure becomes what a caller reads.

`reported(tool, failure=..., unknown=...)` wraps a tool's body. A rejected argument
(`ToolInputError`) is reported with its message; a failing dependency (`EmbeddingError`,
`DatabaseError`) with a generic message naming it, the detail going to the log only; a
write whose commit was cut off says "outcome unknown" and how to retry; a request past its
budget (`DeadlineExceededError`) says how far its write got. Messages say only what is
known: "nothing was stored", "the outcome is unknown", or "stored".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from mcp.server.mcpserver.exceptions import ToolError

from kb_mcp.errors import (
    DatabaseError,
    DatabaseOutcomeUnknownError,
    DeadlineExceededError,
    EmbeddingError,
    ResourceClosedError,
    ToolInputError,
)

__all__ = ["ADD_UNKNOWN", "NEAR_UNCHECKED", "UPDATE_UNKNOWN", "reported", "timed_out"]

log = structlog.get_logger("kb_mcp.server.tools")

NEAR_UNCHECKED = "the document was stored; near duplicates not checked"
ADD_UNKNOWN = (
    "the document may or may not be stored); retry with the same external_id to store it "
    "exactly once"
)
UPDATE_UNKNOWN = (
    "the update may or may not have been applied); read the document with kb_get, or send "
    "the same update again: applying the same fields twice changes nothing"
)


def timed_out(exc: DeadlineExceededError, *, failure: str, unknown: str) -> str:
    """What a caller is told of a request past its budget: only what is known."""
    head = f"no answer within the request's budget of {exc.budget_s:g} s"
    if exc.outcome == "unknown":
        return f"{head}, while committing: the outcome is unknown (" + (
            unknown or "the write may or may not have been applied)"
        )
    if exc.outcome == "stored":
        return f"{head}, after the write was stored; the same call can be repeated safely"
    done = f"; {failure}" if failure else ""
    return f"{head}{done}; the same call can be repeated"


@contextmanager
def reported(tool: str, *, failure: str = "", unknown: str = "") -> Iterator[None]:
    """Turn our errors into tool errors; dependency details go to the log only.

    `failure` says what did not happen when a dependency failed; `unknown` what may or
    may not have happened when the commit's outcome is unknown (writes only).
    """
    suffix = f"; {failure}" if failure else ""
    try:
        yield
    except ToolInputError as exc:
        log.info("tool.rejected", tool=tool, reason=str(exc))
        raise ToolError(str(exc)) from exc
    except DeadlineExceededError as exc:
        log.error("tool.timed_out", tool=tool, budget_s=exc.budget_s, outcome=exc.outcome)
        raise ToolError(timed_out(exc, failure=failure, unknown=unknown)) from exc
    except EmbeddingError as exc:
        log.error(
            "tool.failed",
            tool=tool,
            dependency="embeddings",
            error=type(exc).__name__,
            detail=str(exc),
        )
        raise ToolError(f"the embeddings service failed{suffix}; try again later") from exc
    except DatabaseOutcomeUnknownError as exc:
        log.error("tool.failed", tool=tool, dependency="database", error=type(exc).__name__)
        raise ToolError(
            "the database connection was lost while committing: the outcome is unknown ("
            + (unknown or "the write may or may not have been applied)")
        ) from exc
    except DatabaseError as exc:
        log.error(
            "tool.failed",
            tool=tool,
            dependency="database",
            error=type(exc).__name__,
            detail=str(exc),
        )
        raise ToolError(f"the database is unavailable{suffix}; try again later") from exc
    except ResourceClosedError as exc:
        log.warning("tool.failed", tool=tool, dependency="runtime", error=type(exc).__name__)
        raise ToolError(f"the server is shutting down{suffix}; try again") from exc
