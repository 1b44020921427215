-- Titles and tags searched by keyword, with more weight than the body (kb_mcp.db.keyword).
--
-- documents.keyword_fields: the title and the tags as one English tsvector, GIN-indexed
-- (without a pending list, as 0004 does for the chunks). Adding the STORED generated column
-- rewrites the table once, which computes it for every document already stored: that is
-- the backfill. The body stays searched through chunks.search_vector (0003).

CREATE OR REPLACE FUNCTION kb_keyword_fields(title text, tags text[]) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN to_tsvector('english'::regconfig, title || ' ' || array_to_string(tags, ' '));

ALTER TABLE documents
    ADD COLUMN IF NOT EXISTS keyword_fields tsvector
    GENERATED ALWAYS AS (kb_keyword_fields(title, tags)) STORED;

CREATE INDEX IF NOT EXISTS documents_keyword_fields_idx ON documents
    USING gin (keyword_fields) WITH (fastupdate = off);
