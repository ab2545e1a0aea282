-- Staging holds each chunk only until its merge: parse and compress once, on the way into raw_documents.
-- As jsonb and with default storage, every staged row was parsed as JSON and pglz-compressed at COPY time
-- (two thirds of the COPY's server time), and duplicates paid it twice. Workers now stage into a per-session
-- temporary copy of this table, so the shared table's file_no index has no reader left.
ALTER TABLE ingest_staging
    ALTER COLUMN raw TYPE text,
    ALTER COLUMN authors TYPE text,
    ALTER COLUMN title SET STORAGE EXTERNAL,
    ALTER COLUMN abstract SET STORAGE EXTERNAL,
    ALTER COLUMN full_text SET STORAGE EXTERNAL,
    ALTER COLUMN raw SET STORAGE EXTERNAL,
    ALTER COLUMN raw_bytes SET STORAGE EXTERNAL;
ALTER TABLE ingest_staging SET (toast_tuple_target = 8160);
DROP INDEX ingest_staging_file_no;
