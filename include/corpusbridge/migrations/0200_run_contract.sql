-- The run contract (corpusbridge/runs.py): every stage's run table has the same run columns, and one view lists
-- every run of every stage. Export and load runs get their tables here; their stages add their own count columns.

ALTER TABLE index_runs ADD COLUMN code_version text;

CREATE TABLE export_runs (
    run_id       bigserial PRIMARY KEY,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    code_version text NOT NULL,
    seconds      double precision,
    error        text
);

CREATE TABLE load_runs (
    run_id       bigserial PRIMARY KEY,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    code_version text NOT NULL,
    seconds      double precision,
    error        text
);

-- Every run of every stage, newest first per stage: what `corpusbridge status` and a person at psql read.
-- `counts` holds the stage's own columns, so this view never needs to change when a stage adds one.
CREATE VIEW stage_runs AS
    SELECT 'ingest' AS stage, r.run_id, r.status, r.started_at, r.finished_at, r.seconds, r.error, r.code_version,
           to_jsonb(r) - ARRAY['run_id', 'status', 'started_at', 'finished_at', 'seconds', 'error', 'code_version']
               AS counts
    FROM ingest_runs r
    UNION ALL
    SELECT 'sanitize', r.run_id, r.status, r.started_at, r.finished_at, r.seconds, r.error, r.code_version,
           to_jsonb(r) - ARRAY['run_id', 'status', 'started_at', 'finished_at', 'seconds', 'error', 'code_version']
    FROM sanitize_runs r
    UNION ALL
    SELECT 'index', r.run_id, r.status, r.started_at, r.finished_at, r.seconds, r.error, r.code_version,
           to_jsonb(r) - ARRAY['run_id', 'status', 'started_at', 'finished_at', 'seconds', 'error', 'code_version']
    FROM index_runs r
    UNION ALL
    SELECT 'export', r.run_id, r.status, r.started_at, r.finished_at, r.seconds, r.error, r.code_version,
           to_jsonb(r) - ARRAY['run_id', 'status', 'started_at', 'finished_at', 'seconds', 'error', 'code_version']
    FROM export_runs r
    UNION ALL
    SELECT 'load', r.run_id, r.status, r.started_at, r.finished_at, r.seconds, r.error, r.code_version,
           to_jsonb(r) - ARRAY['run_id', 'status', 'started_at', 'finished_at', 'seconds', 'error', 'code_version']
    FROM load_runs r;
