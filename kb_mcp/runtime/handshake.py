"""The started handshake across a process boundary: one JSON line on an inherited pipe.

`kb-mcp serve --ready-fd N` and `kb-mcp dev --ready-fd N` write one line to file
descriptor N once the server accepts connections and `/readyz` answers 200, then close
it: `{"transport": "http", "host": "127.0.0.1", "port": 8080, "url": ".../mcp",
"booted_in_s": 0.4, "pid": 1234}` (dev: port, url, data_dir, pid). A parent that passed
the write end of a pipe reads that line, or end-of-file if the child exited before it
was ready. In process, callers
use `serve(on_started=...)` directly. Logs are never the way to learn the port.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["write_ready_line"]


def write_ready_line(fd: int, document: dict[str, Any]) -> None:
    """Write `document` (plus this pid) as one line to `fd` and close it."""
    line = json.dumps({**document, "pid": os.getpid()}) + "\n"
    with os.fdopen(fd, "w", encoding="utf-8", closefd=True) as handle:
        handle.write(line)
