-- Titles and tags written as identifiers are searched by their words (kb_mcp.db.keyword).
--
-- PostgreSQL's parser reads a dotted name as one token (a host or a file name): the title
-- `selectors.BaseSelector.unregister` gave the single lexeme
-- 'selectors.baseselector.unregister', so a search for `unregister` or `selector` did not
-- find it by its title. kb_keyword_fields now adds to the lexemes of the text as written
-- (a search for the whole dotted name still finds it) those of the title and tags with
-- `.`, `_`, `/` and `:` read as spaces (`baseselector`), and of that with camelCase split
-- (`BaseSelector` -> `Base Selector`). Hyphenated words were already split by the parser.
--
-- A generated column keeps the values it was computed with, so the column is dropped and
-- added again: the table is rewritten once and every stored document's title and tags are
-- indexed the new way (the backfill). The GIN index goes with the column and is rebuilt.

CREATE OR REPLACE FUNCTION kb_identifier_words(text text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(text, '[._/:]+', ' ', 'g');

CREATE OR REPLACE FUNCTION kb_keyword_fields(title text, tags text[]) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN to_tsvector('english'::regconfig, title || ' ' || array_to_string(tags, ' '))
        || to_tsvector('english'::regconfig,
            kb_identifier_words(title || ' ' || array_to_string(tags, ' ')))
        || to_tsvector('english'::regconfig, regexp_replace(
            kb_identifier_words(title || ' ' || array_to_string(tags, ' ')),
            '([[:lower:][:digit:]])([[:upper:]])', '\1 \2', 'g'));

ALTER TABLE documents DROP COLUMN IF EXISTS keyword_fields;

ALTER TABLE documents
    ADD COLUMN keyword_fields tsvector
    GENERATED ALWAYS AS (kb_keyword_fields(title, tags)) STORED;

CREATE INDEX IF NOT EXISTS documents_keyword_fields_idx ON documents
    USING gin (keyword_fields) WITH (fastupdate = off);
