-- Hybrid search and duplicate detection, upgrading an existing knowledge base in place.
--
-- Independent of 0002 (external ids): every statement here works whether or not 0002 ran.
-- Adding a STORED generated column rewrites the table once, which computes the value for
-- every existing row: that is the backfill.
--
-- chunks.search_vector: the chunk's text as an English tsvector (stemmed words; numbers,
-- identifiers and error codes kept as lexemes), GIN-indexed for kb_search's keyword signal.
--
-- documents.content_hash: SHA-256 of the content with every run of ASCII whitespace folded
-- to one space and the ends trimmed (kb_content_hash), so content identical but for
-- spacing is found as a duplicate. Application code never computes it: the database does,
-- on insert and on update, and a lookup calls the same function.

CREATE OR REPLACE FUNCTION kb_content_hash(content text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN encode(
        sha256(convert_to(btrim(regexp_replace(content, '[ \t\n\r\f\v]+', ' ', 'g'), ' '), 'UTF8')),
        'hex'
    );

ALTER TABLE chunks
    ADD COLUMN IF NOT EXISTS search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED;

CREATE INDEX IF NOT EXISTS chunks_search_vector_idx ON chunks USING gin (search_vector);

ALTER TABLE documents
    ADD COLUMN IF NOT EXISTS content_hash text
    GENERATED ALWAYS AS (kb_content_hash(content)) STORED;

CREATE INDEX IF NOT EXISTS documents_content_hash_idx ON documents (content_hash);

-- 0001 already has it; 0002 adds it too. Either way it exists afterwards, NOT NULL.
ALTER TABLE documents ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
UPDATE documents SET updated_at = created_at WHERE updated_at IS NULL;
