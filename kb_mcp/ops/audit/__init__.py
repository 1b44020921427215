"""`kb-mcp secrets audit`: secrets in the tree and its history, and the `.env` policy.

Only the command is imported here: the scanner (`scan`, `detectors`, `history`) needs
`detect-secrets` and is imported when the command runs.
"""

from kb_mcp.ops.audit.cli import register

__all__ = ["register"]
