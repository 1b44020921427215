-- Chunk rows kept whole in their heap page, embedding included, when they fit.
--
-- pgvector stores `vector` as EXTERNAL: PostgreSQL moves it out of line (TOAST) as soon
-- as a row passes `toast_tuple_target`, 2 kB by default, so at 1536 dimensions (6 kB)
-- every chunk's embedding lived in the TOAST table and each distance a search computes on
-- a row (the HNSW candidates' exact distances, an exact scan) read it back through the
-- TOAST index: 4 extra tuples a row. Measured at 300 chunks of 1536 dimensions
-- (`bench/bench_mcp.py`'s data): a vector search 5.3 -> 1.1 ms, an exact scan 3.0 -> 1.1
-- ms, hybrid 9.5 -> 6.8 ms. With the target at its maximum a row moves its embedding out
-- of line only when it does not fit in a page (a long chunk at 1536 dimensions, every
-- chunk above ~2,000 dimensions), as before.
--
-- Only rows written from now on are laid out so; rows already stored keep their TOAST
-- pointers until the table is rewritten (`VACUUM FULL chunks`, under an exclusive lock:
-- at a quiet time, README "How it behaves"). Nothing else changes, nothing is rewritten here.

ALTER TABLE chunks SET (toast_tuple_target = 8160);
