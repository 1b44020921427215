"""The embedded local stack behind `kb-mcp dev`: moto's Secrets Manager, a private
PostgreSQL with pgvector from a wheel, and a local OpenAI-compatible embeddings endpoint.
The test suite starts the same servers. Nothing is re-exported (see each module)."""
