-- Sanitation: clean documents, their run log, rejects with reasons, and the staging table batches COPY into.

-- Bumped whenever a clean row really changes (or is removed): the index stage reads "changed since seq N".
CREATE SEQUENCE clean_document_seq;

CREATE TABLE sanitize_runs (
    run_id            bigserial PRIMARY KEY,
    status            text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    code_version      text NOT NULL,
    from_seq          bigint NOT NULL,
    to_seq            bigint NOT NULL,
    docs_in           bigint NOT NULL DEFAULT 0,
    docs_clean        bigint NOT NULL DEFAULT 0,
    docs_rejected     bigint NOT NULL DEFAULT 0,
    reject_reasons    jsonb NOT NULL DEFAULT '{}'::jsonb,
    duplicates_linked bigint NOT NULL DEFAULT 0,
    rows_written      bigint NOT NULL DEFAULT 0,
    seconds           double precision,
    error             text,
    CONSTRAINT docs_reconcile CHECK (status <> 'succeeded' OR docs_in = docs_clean + docs_rejected)
);

CREATE TABLE clean_documents (
    doc_id         text PRIMARY KEY,
    source_format  text NOT NULL,
    title          text,
    abstract       text,
    full_text      text,
    authors        jsonb NOT NULL DEFAULT '[]'::jsonb,
    year           integer,
    venue          text,
    language       text NOT NULL DEFAULT 'und',
    language_from  text NOT NULL CHECK (language_from IN ('source', 'detected', 'none')),
    notes          text[] NOT NULL DEFAULT '{}',
    -- sha256 of the normalized text; NULL when there is too little text to call two documents the same.
    text_hash      text,
    canonical_id   text NOT NULL,
    clean_hash     text NOT NULL,
    source_seq     bigint NOT NULL,
    clean_seq      bigint NOT NULL DEFAULT nextval('clean_document_seq'),
    run_id         bigint NOT NULL,
    code_version   text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clean_documents_clean_seq ON clean_documents (clean_seq);
CREATE INDEX clean_documents_text_hash ON clean_documents (text_hash) WHERE text_hash IS NOT NULL;

-- Documents that did not become clean, with why; one row per document (its latest verdict).
CREATE TABLE sanitize_rejects (
    doc_id      text PRIMARY KEY,
    reason      text NOT NULL,
    detail      text NOT NULL,
    source_seq  bigint NOT NULL,
    run_id      bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sanitize_rejects_reason ON sanitize_rejects (reason);

-- A clean row that went away (its raw document is now rejected): external indexes must delete it.
CREATE TABLE clean_document_removals (
    doc_id     text NOT NULL,
    clean_seq  bigint NOT NULL DEFAULT nextval('clean_document_seq'),
    run_id     bigint NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (doc_id, clean_seq)
);
CREATE INDEX clean_document_removals_seq ON clean_document_removals (clean_seq);

-- Each batch is COPYed here (per session, rows marked by batch), then moved by set-based statements.
CREATE UNLOGGED TABLE sanitize_staging (
    session_pid   integer NOT NULL DEFAULT pg_backend_pid(),
    doc_id        text NOT NULL,
    source_seq    bigint NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('clean', 'rejected')),
    source_format text,
    title         text,
    abstract      text,
    full_text     text,
    authors       jsonb,
    year          integer,
    venue         text,
    language      text,
    language_from text,
    notes         text[],
    text_hash     text,
    clean_hash    text,
    reason        text,
    detail        text
);
CREATE INDEX sanitize_staging_pid ON sanitize_staging (session_pid);
