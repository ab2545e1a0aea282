-- The load stage's own run columns: the documents this run processed and the batch's reconciliation
-- (docs exported = processed = loaded, the missing ids when not), stored per run and read by `corpusbridge status`.
ALTER TABLE load_runs
    ADD COLUMN docs_processed bigint NOT NULL DEFAULT 0,
    ADD COLUMN reconciliation jsonb;
