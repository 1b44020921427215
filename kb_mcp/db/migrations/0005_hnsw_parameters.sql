-- The chunk index rebuilt with the graph parameters chosen by measurement, upgrading an
-- existing knowledge base in place.
--
-- Placeholder filled in by kb_mcp.db.migrate (fixed SQL only):
--   {{chunk_index}}     the statement 0001 creates a new knowledge base's index with:
--                       HNSW over chunk embeddings for cosine distance, with
--                       kb_mcp.db.vectors.HNSW_M and HNSW_EF_CONSTRUCTION, or a comment
--                       when the dimension is above the HNSW limit (no index to rebuild)
--
-- Why (bench/bench_search.py at 100k chunks, its hard data set; secrets/PROOF.md): with
-- pgvector's defaults (m 16, ef_construction 64) recall@10 of kb_search is 0.94 at
-- ef_search 400 and 0.96 at 800; with ef_construction 128 it is 0.99 at 400 and 0.95 at
-- 200. m 24 with ef_construction 64 reaches 0.96 at 400: a wider graph pays less than a
-- better-built one.
--
-- Cost: the rebuild reads every chunk once and runs inside this migration's transaction,
-- under the migration lock; DROP INDEX holds an exclusive lock on chunks until the commit,
-- so searches and writes of running instances wait for it. It takes minutes at 100k chunks
-- (about as long as the first build took): upgrade a large knowledge base at a quiet
-- time. The build is much faster when the graph fits in maintenance_work_mem (about
-- 8 KiB per chunk at 1536 dimensions): raise it for the role or the server beforehand.
-- On a new knowledge base the index is empty and the rebuild instant.

DROP INDEX IF EXISTS chunks_embedding_hnsw_idx;

{{chunk_index}}
