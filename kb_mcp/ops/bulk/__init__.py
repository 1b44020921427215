"""Bulk import and export: `kb-mcp import PATH...` and `kb-mcp export`."""
