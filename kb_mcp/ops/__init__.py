"""Operations behind `kb-mcp secrets ...` and `kb-mcp drill`, by job: `rotation/`,
`audit/`, `drill/`, and the modules `verify`, `seed`, `age`, `policy` (with `aws`, the
clients they share). Each registers its own sub-command; nothing is re-exported here, so
running one command does not import the others."""
