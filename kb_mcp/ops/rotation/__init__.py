"""`kb-mcp secrets rotate`: the four AWS rotation steps and the two secret kinds."""

from kb_mcp.ops.rotation.command import register
from kb_mcp.ops.rotation.openai_key import rollback_openai, rotate_openai
from kb_mcp.ops.rotation.postgres import rollback_postgres, rotate_postgres
from kb_mcp.ops.rotation.steps import RotationResult

__all__ = [
    "RotationResult",
    "register",
    "rollback_openai",
    "rollback_postgres",
    "rotate_openai",
    "rotate_postgres",
]
