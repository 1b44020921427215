"""kb-mcp's load-under-rotation harness (`load.py`): the zero-drop test, the rotation
benchmark and the drill drive a runtime through it.

The hot-swap core itself (generation, swap, refresher, observer, the drains' task group)
is the `secretswap` library (`secretswap/` in this repository, see its README); kb-mcp
imports it from there under its own names. kb-mcp's holders over it live in
`kb_mcp.db.pool` and `kb_mcp.embeddings.holder`.
"""
