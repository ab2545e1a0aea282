-- Merges select and delete staging rows by file_no: with an index they touch only their own batch, however many
-- dead rows earlier batches left behind before autovacuum reclaims them.
CREATE INDEX ingest_staging_file_no ON ingest_staging (file_no);
