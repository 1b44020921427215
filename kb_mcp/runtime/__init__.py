"""Runtime: the supervisor (boot, signals, shutdown), the refresher, and what they share.

    supervisor.py   boot_runtime(): every resource from secrets, fail fast, close in order
    serve.py        `kb-mcp serve`: transports, signals, exit codes
    refresher.py    polls secrets every TTL (jittered) and rotates what changed
    tokens.py       the bearer tokens /mcp accepts, hot-reloaded
    occupancy.py    per-generation user counts behind zero-drop swaps
    health.py       what /readyz reports

Nothing is re-exported here: `db` and `embeddings` import `occupancy` from this package,
so importing the supervisor from `__init__` would be an import cycle.
"""
