-- The keyword index (0003) without GIN's pending list.
--
-- With fastupdate (GIN's default) a new chunk's lexemes go to a pending list that every
-- keyword search scans linearly until VACUUM (or 4 MB of it) merges it into the index: a
-- knowledge base fed through kb_add searches slower and slower between vacuums (measured:
-- one hybrid search over 1,800 freshly added chunks took 2x as long before the list was
-- merged). Reads outnumber writes here, so each insert updates the index itself, and what
-- is pending now is merged at once.

ALTER INDEX chunks_search_vector_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('chunks_search_vector_idx'::regclass);
