-- Full-text index: a maintained tsvector on clean documents (title weight A, abstract B, body D) + GIN,
-- and one watermark row per index backend so indexing is incremental.

ALTER TABLE clean_documents ADD COLUMN search_vector tsvector;
ALTER TABLE clean_documents ADD COLUMN indexed_seq bigint;
CREATE INDEX clean_documents_search ON clean_documents USING gin (search_vector);

CREATE TABLE index_state (
    backend      text PRIMARY KEY CHECK (backend IN ('postgres', 'elasticsearch')),
    watermark    bigint NOT NULL DEFAULT 0,
    index_name   text,
    docs_indexed bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE index_runs (
    run_id        bigserial PRIMARY KEY,
    backend       text NOT NULL,
    mode          text NOT NULL CHECK (mode IN ('incremental', 'rebuild')),
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    from_seq      bigint NOT NULL,
    to_seq        bigint NOT NULL,
    docs_in       bigint NOT NULL DEFAULT 0,
    docs_indexed  bigint NOT NULL DEFAULT 0,
    docs_deleted  bigint NOT NULL DEFAULT 0,
    docs_failed   bigint NOT NULL DEFAULT 0,
    index_name    text,
    seconds       double precision,
    error         text,
    CONSTRAINT index_reconcile CHECK (status <> 'succeeded' OR docs_in = docs_indexed + docs_deleted + docs_failed)
);

-- Documents an index refused (e.g. an Elasticsearch mapping error), with the reason: never silently dropped.
CREATE TABLE index_rejects (
    backend    text NOT NULL,
    doc_id     text NOT NULL,
    clean_seq  bigint NOT NULL,
    status     integer,
    error_type text NOT NULL,
    reason     text NOT NULL,
    run_id     bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (backend, doc_id)
);
