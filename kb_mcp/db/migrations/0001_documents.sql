-- Documents and their embedded chunks.
--
-- Placeholders filled in by kb_mcp.db.migrate (integers and fixed SQL only, never user input):
--   {{dimensions}}      the embedding dimension N (KB_MCP_EMBEDDING_DIMENSIONS)
--   {{chunk_index}}     the HNSW index over chunk embeddings for cosine distance, or a
--                       comment when N is too large for any HNSW index (exact search)
--
-- documents.embedding is the vector of the document's first chunk (its title and opening
-- passage): a whole-document vector at no extra embedding cost. Search runs over chunks.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE documents (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title       text        NOT NULL CHECK (length(btrim(title)) > 0),
    content     text        NOT NULL CHECK (length(btrim(content)) > 0),
    tags        text[]      NOT NULL DEFAULT '{}',
    metadata    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    embedding   vector({{dimensions}}),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chunks (
    document_id uuid    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal     integer NOT NULL CHECK (ordinal >= 0),
    content     text    NOT NULL,
    embedding   vector({{dimensions}}) NOT NULL,
    PRIMARY KEY (document_id, ordinal)
);

-- Newest first, paged by (created_at, id).
CREATE INDEX documents_created_at_id_idx ON documents (created_at DESC, id DESC);

-- Tag filters: tags @> $1 (every requested tag).
CREATE INDEX documents_tags_idx ON documents USING gin (tags);

{{chunk_index}}
