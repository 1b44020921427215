-- Idempotent adds, and the key that signs kb_list cursors.
--
-- documents.external_id is the caller's own key for a document (kb_add's external_id):
-- unique per knowledge base, so a retried add (after "outcome unknown") finds the
-- document it may already have stored instead of storing it twice. Documents added
-- without one keep NULL (a unique index allows any number of NULLs).
-- documents.updated_at is set when kb_add with a known external_id replaces a document.
--
-- cursor_keys holds one random key (two gen_random_uuid values, 244 random bits) shared by
-- every task using this database, so a cursor from one task or boot decodes on another.

ALTER TABLE documents ADD COLUMN IF NOT EXISTS external_id text
    CHECK (external_id IS NULL OR length(btrim(external_id)) > 0);
ALTER TABLE documents ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

CREATE UNIQUE INDEX IF NOT EXISTS documents_external_id_key ON documents (external_id);

CREATE TABLE IF NOT EXISTS cursor_keys (
    id  boolean PRIMARY KEY DEFAULT true CHECK (id),
    key text    NOT NULL DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
);
INSERT INTO cursor_keys DEFAULT VALUES ON CONFLICT (id) DO NOTHING;
