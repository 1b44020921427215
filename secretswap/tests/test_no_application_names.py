"""The library speaks of no application: its source never names the service it came from."""

from __future__ import annotations

import re
from pathlib import Path

import secretswap

SOURCE = Path(secretswap.__file__).parent
APPLICATION = re.compile(r"kb[-_]mcp", re.IGNORECASE)


def test_library_source_never_names_kb_mcp() -> None:
    """No file of the installed package mentions kb-mcp or kb_mcp (hints, docstrings, code)."""
    files = sorted(p for p in SOURCE.rglob("*") if p.is_file() and p.suffix in {".py", ".typed"})
    assert files, SOURCE
    named = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if APPLICATION.search(line)
    ]
    assert named == []
