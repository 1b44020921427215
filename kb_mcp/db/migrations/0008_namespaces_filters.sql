-- Namespaces, and the indexes behind kb_search / kb_list filters, upgrading in place.
--
-- documents.namespace: every document belongs to one. Existing rows take the default
-- 'default' (a constant default: PostgreSQL 11+ records it in the catalog, no rewrite).
-- A name is 1-64 characters of letters, digits, '_', '.', '-' (no ':', which keys the
-- advisory locks as "<namespace>:<external_id>"); kb_mcp.db.filters.NAMESPACE_PATTERN.
--
-- external_id becomes unique per namespace: (namespace, external_id). Two projects may
-- each have a document keyed "README.md"; within one namespace a key still names one
-- document. Every key stored before is in 'default', so the old unique index's rows stay
-- unique under the new one.
--
-- Filter indexes (kb_mcp.db.filters): (namespace, created_at, id) for kb_list's order
-- within a namespace; GIN jsonb_path_ops on metadata for equality and containment
-- (`metadata @> ...`); updated_at for the updated before/after range. Range filters on a
-- metadata key cannot use an index (any key may be asked for): they are checked on the
-- rows the other conditions leave.

ALTER TABLE documents ADD COLUMN IF NOT EXISTS namespace text NOT NULL DEFAULT 'default'
    CONSTRAINT documents_namespace_check CHECK (namespace ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$');

DROP INDEX IF EXISTS documents_external_id_key;
CREATE UNIQUE INDEX IF NOT EXISTS documents_namespace_external_id_key
    ON documents (namespace, external_id);

CREATE INDEX IF NOT EXISTS documents_namespace_created_at_id_idx
    ON documents (namespace, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS documents_metadata_idx ON documents USING gin (metadata jsonb_path_ops);
CREATE INDEX IF NOT EXISTS documents_updated_at_idx ON documents (updated_at);

-- A metadata value read as a timestamp for date ranges: NULL unless it is a JSON string
-- PostgreSQL reads as a timestamptz (a malformed date in one document never fails a search).
-- PARALLEL UNSAFE: its EXCEPTION block is a subtransaction, which PostgreSQL refuses in a
-- parallel query ("cannot start subtransactions during a parallel operation", seen at
-- 10,000 documents); a statement using it is planned without parallel workers.
CREATE OR REPLACE FUNCTION kb_jsonb_timestamptz(value jsonb) RETURNS timestamptz
    LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE
AS $$
BEGIN
    IF jsonb_typeof(value) <> 'string'
       OR (value #>> '{}') !~ '^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}(:?\d{2})?)?$' THEN
        RETURN NULL;
    END IF;
    RETURN (value #>> '{}')::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
