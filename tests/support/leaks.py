"""The leak check of the suite's log guard (`tests/conftest.py`): which registered secret
values appear in captured log text. A test helper, so it lives with the tests."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["iter_leaks"]


def iter_leaks(text: str, values: Iterable[str]) -> list[str]:
    """The values found in `text` (report them by count and length only: never print one)."""
    return [v for v in values if v in text]
