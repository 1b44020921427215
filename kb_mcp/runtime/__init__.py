"""Runtime: the composition root, the one place that knows every part.

    supervisor.py   boot_runtime(): every resource from secrets, fail fast, close in order
    serve.py        `kb-mcp serve`: transports, signals, exit codes, the started handshake
    handshake.py    `--ready-fd`: the started handshake across a process boundary
    app.py          the MCP server and HTTP app over a booted runtime
    tokens.py       the bearer tokens /mcp accepts, hot-reloaded
    health.py       what /readyz reports

The hot-swap mechanism and the refresher live below, in `kb_mcp.hotswap`; nothing below
imports this package (`.importlinter`).
"""
