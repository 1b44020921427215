"""A package's re-exported names, imported from their modules on first use (PEP 562).

A package whose names live in heavy modules (the MCP SDK, aioboto3) re-exports them with
`__getattr__ = lazy_exports(__name__, {name: module})`, so importing one light module of
the package does not pay for the others. Imports nothing of ours.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`: each name in `homes` from its module."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__
