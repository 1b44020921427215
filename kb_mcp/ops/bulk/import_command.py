"""`kb-mcp import` (registered by `kb_mcp.cli`; the command lives in `kb_mcp.ops.bulk.cli`)."""

from kb_mcp.ops.bulk.cli import register_import as register

__all__ = ["register"]
