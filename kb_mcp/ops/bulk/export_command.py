"""`kb-mcp export` (registered by `kb_mcp.cli`; the command lives in `kb_mcp.ops.bulk.cli`)."""

from kb_mcp.ops.bulk.cli import register_export as register

__all__ = ["register"]
