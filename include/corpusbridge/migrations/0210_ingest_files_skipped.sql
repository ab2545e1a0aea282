-- What an ingest run's listing skipped, by kind ({"hidden entries": 3, ...}): visible per run, not only in a log.
ALTER TABLE ingest_runs ADD COLUMN files_skipped jsonb NOT NULL DEFAULT '{}'::jsonb;
