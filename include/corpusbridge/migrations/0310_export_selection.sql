-- Export selection: what the default ("pending") selection and a backfill's data interval need to be cheap.
--
-- clean_documents.updated_at (0100) is the time a clean row last really changed: sanitize sets it on insert and on
-- every change of the clean text, so a backfill's data interval is `updated_at` in [from, to). Existing rows already
-- carry it (NOT NULL DEFAULT now()), so nothing needs a backfill here; an index makes the interval a range scan.
CREATE INDEX IF NOT EXISTS clean_documents_updated_at ON clean_documents (updated_at);

-- Canonical documents are the only ones exported, in byte order of doc_id (COLLATE "C": the same order, hence the
-- same shards, on every server whatever its locale); this partial index serves that ordered scan.
CREATE INDEX IF NOT EXISTS clean_documents_canonical ON clean_documents ((doc_id COLLATE "C")) WHERE canonical_id = doc_id;

-- A batch names the model by hash (what document_results compares with); model_name stays for people.
ALTER TABLE export_batches ADD COLUMN IF NOT EXISTS model_hash text;
ALTER TABLE export_batches ADD COLUMN IF NOT EXISTS shard_rows integer;
ALTER TABLE export_batches ADD COLUMN IF NOT EXISTS shard_bytes bigint;

-- The pending selection's "in flight" test: batches still exported-not-loaded, by dictionary and model.
CREATE INDEX IF NOT EXISTS export_batches_in_flight ON export_batches (dictionary_version, model_hash)
    WHERE status = 'exported';
