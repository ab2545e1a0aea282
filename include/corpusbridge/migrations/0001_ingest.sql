-- Ingestion: run log, file ledger, raw documents with provenance, quarantine, and staging tables.

CREATE TABLE ingest_runs (
    run_id              bigserial PRIMARY KEY,
    source_dir          text NOT NULL,
    status              text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    code_version        text NOT NULL,
    files_seen          bigint NOT NULL DEFAULT 0,
    files_new           bigint NOT NULL DEFAULT 0,
    files_changed       bigint NOT NULL DEFAULT 0,
    files_unchanged     bigint NOT NULL DEFAULT 0,
    bytes_read          bigint NOT NULL DEFAULT 0,
    records_seen        bigint NOT NULL DEFAULT 0,
    records_loaded      bigint NOT NULL DEFAULT 0,
    records_duplicate   bigint NOT NULL DEFAULT 0,
    records_quarantined bigint NOT NULL DEFAULT 0,
    seconds             double precision,
    error               text,
    CONSTRAINT records_reconcile CHECK (
        status <> 'succeeded' OR records_seen = records_loaded + records_duplicate + records_quarantined)
);

-- One row per crawled file ever read: what lets a nightly run skip what it already has.
CREATE TABLE source_files (
    path                text PRIMARY KEY,
    size_bytes          bigint NOT NULL,
    mtime_ns            bigint NOT NULL,
    sha256              text NOT NULL,
    format              text NOT NULL,
    status              text NOT NULL CHECK (status IN ('loaded', 'partial', 'quarantined')),
    records_seen        bigint NOT NULL,
    records_quarantined bigint NOT NULL,
    first_seen          timestamptz NOT NULL DEFAULT now(),
    last_ingested       timestamptz NOT NULL DEFAULT now(),
    run_id              bigint NOT NULL REFERENCES ingest_runs (run_id)
);

CREATE SEQUENCE raw_document_change_seq;

CREATE TABLE raw_documents (
    doc_id          text PRIMARY KEY,
    source_format   text NOT NULL,
    source_file     text NOT NULL,
    source_mtime_ns bigint NOT NULL,
    source_ordinal  bigint NOT NULL,
    title           text,
    abstract        text,
    full_text       text,
    authors         jsonb NOT NULL DEFAULT '[]'::jsonb,
    year            integer,
    venue           text,
    language        text,
    raw             jsonb NOT NULL,
    content_hash    text NOT NULL,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    last_run_id     bigint NOT NULL,
    -- Bumped only when content_hash changes: later stages read "changed since seq N".
    change_seq      bigint NOT NULL DEFAULT nextval('raw_document_change_seq')
);
CREATE INDEX raw_documents_change_seq ON raw_documents (change_seq);

-- Every file a document arrived from (the same DOI in two crawls is one document, two provenance rows).
CREATE TABLE document_sources (
    doc_id       text NOT NULL REFERENCES raw_documents (doc_id) ON DELETE CASCADE,
    source_file  text NOT NULL,
    locator      text NOT NULL,
    content_hash text NOT NULL,
    run_id       bigint NOT NULL,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (doc_id, source_file, locator)
);
CREATE INDEX document_sources_file ON document_sources (source_file);

CREATE TABLE quarantine (
    quarantine_id bigserial PRIMARY KEY,
    run_id        bigint NOT NULL,
    source_file   text NOT NULL,
    locator       text NOT NULL,
    error_class   text NOT NULL,
    message       text NOT NULL,
    raw           bytea,
    raw_truncated boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_file ON quarantine (source_file);

-- Parser workers COPY each file's records and quarantine items here in one transaction per file; the
-- loader then moves a batch of files to the tables above with set-based statements and deletes them here.
CREATE UNLOGGED TABLE ingest_staging (
    file_no       bigint NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('record', 'quarantine')),
    source_file   text NOT NULL,
    mtime_ns      bigint NOT NULL,
    ordinal       bigint NOT NULL,
    locator       text NOT NULL,
    doc_id        text,
    source_format text,
    title         text,
    abstract      text,
    full_text     text,
    authors       jsonb,
    year          integer,
    venue         text,
    language      text,
    raw           jsonb,
    content_hash  text,
    error_class   text,
    message       text,
    raw_bytes     bytea,
    raw_truncated boolean
);
