"""`python -m kb_mcp` is the same as the `kb-mcp` console script."""

from kb_mcp.cli import main

raise SystemExit(main())
