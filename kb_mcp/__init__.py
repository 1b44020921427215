"""kb-mcp: a knowledge-base MCP server whose credentials come from AWS Secrets Manager.

Secrets are fetched at boot, validated, cached with a TTL and hot-reloaded on rotation
without dropping a request. See README.md for running it and docs/ARCHITECTURE.md for the shape.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
