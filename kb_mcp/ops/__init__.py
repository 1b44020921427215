"""Operations behind `kb-mcp secrets ...` and `kb-mcp drill`: verify, seed, rotate, age,
audit, policy, drill. Each module registers its own sub-command; nothing is re-exported,
so running one command does not import the others."""
