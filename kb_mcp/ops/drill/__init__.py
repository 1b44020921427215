"""`kb-mcp drill`: rotate secrets under load and report failed requests."""

from kb_mcp.ops.drill.command import DrillOptions, DrillReport, register, run_drill

__all__ = ["DrillOptions", "DrillReport", "register", "run_drill"]
