-- The round trip: export batches (which documents went into which shard), the exactly-once load ledger, and the
-- results loaded back (concepts, vectors) with what each document was last processed with.
--
-- Provenance is carried by key: every concept and vector row names its (batch_id, shard); the ledger row of that
-- shard holds the run, code version, dictionary version, model hash, embedding runtime and image digest. At 10^8
-- documents this keeps a concept row to its offsets instead of repeating six strings on each of ~10^9 rows.

CREATE EXTENSION IF NOT EXISTS vector;

ALTER TABLE export_runs
    ADD COLUMN selection     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN batch_id      text,
    ADD COLUMN shards        integer NOT NULL DEFAULT 0,
    ADD COLUMN docs_exported bigint NOT NULL DEFAULT 0,
    ADD COLUMN bytes         bigint NOT NULL DEFAULT 0;

-- One exported batch. batch_id is derived from the content (deterministic: the same selection of the same
-- documents gives the same id and the same bytes), so a rerun finds its batch instead of making a second one.
CREATE TABLE export_batches (
    batch_id           text PRIMARY KEY,
    run_id             bigint REFERENCES export_runs (run_id),
    selection          jsonb NOT NULL,
    dictionary_version text,
    model_name         text,
    shard_count        integer NOT NULL,
    rows               bigint NOT NULL,
    bytes              bigint NOT NULL,
    manifest_sha256    text NOT NULL,
    manifest_path      text NOT NULL,
    status             text NOT NULL DEFAULT 'exported' CHECK (status IN ('exported', 'loaded', 'abandoned')),
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE export_batch_documents (
    batch_id  text NOT NULL REFERENCES export_batches (batch_id) ON DELETE CASCADE,
    doc_id    text NOT NULL,
    shard     integer NOT NULL,
    clean_seq bigint NOT NULL,  -- the clean row's version that was exported
    PRIMARY KEY (batch_id, doc_id)
);
CREATE INDEX export_batch_documents_doc ON export_batch_documents (doc_id);
CREATE INDEX export_batch_documents_shard ON export_batch_documents (batch_id, shard);

ALTER TABLE load_runs
    ADD COLUMN batch_id        text,
    ADD COLUMN run_label       text,
    ADD COLUMN shards_loaded   integer NOT NULL DEFAULT 0,
    ADD COLUMN shards_skipped  integer NOT NULL DEFAULT 0,
    ADD COLUMN docs_loaded     bigint NOT NULL DEFAULT 0,
    ADD COLUMN concepts_loaded bigint NOT NULL DEFAULT 0,
    ADD COLUMN vectors_loaded  bigint NOT NULL DEFAULT 0;

-- Exactly once: a shard's result is loaded in one transaction that also inserts its ledger row; a retry, a crash
-- mid-load or a rerun of the whole DAG finds the row and loads nothing twice.
CREATE TABLE load_ledger (
    batch_id           text NOT NULL REFERENCES export_batches (batch_id),
    shard              integer NOT NULL,
    result_sha256      text NOT NULL,
    run_id             bigint REFERENCES load_runs (run_id),
    run_label          text,          -- the Airflow run id or the CLI's run id
    code_version       text NOT NULL,
    dictionary_version text NOT NULL,
    model_hash         text,
    embedding_runtime  text,
    image_digest       text,
    docs               bigint NOT NULL,
    concepts           bigint NOT NULL,
    vectors            bigint NOT NULL,
    loaded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, shard)
);

-- What each document was last processed with: the export's default selection sends a document again only when
-- its clean text changed or the dictionary / model differ.
CREATE TABLE document_results (
    doc_id             text PRIMARY KEY,
    batch_id           text NOT NULL,
    shard              integer NOT NULL,
    clean_seq          bigint NOT NULL,
    dictionary_version text NOT NULL,
    model_hash         text,
    loaded_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (batch_id, shard) REFERENCES load_ledger (batch_id, shard)
);

CREATE TABLE document_concepts (
    doc_id       text NOT NULL,
    concept_id   text NOT NULL,
    start_offset integer NOT NULL,  -- code points into the exported text, end exclusive
    end_offset   integer NOT NULL,
    sentence     integer NOT NULL,
    matched      text NOT NULL,
    batch_id     text NOT NULL,
    shard        integer NOT NULL,
    PRIMARY KEY (doc_id, start_offset, concept_id)
);
CREATE INDEX document_concepts_concept ON document_concepts (concept_id);

CREATE TABLE document_vectors (
    doc_id    text PRIMARY KEY,
    embedding vector(384) NOT NULL,
    batch_id  text NOT NULL,
    shard     integer NOT NULL
);
CREATE INDEX document_vectors_hnsw ON document_vectors USING hnsw (embedding vector_cosine_ops);
