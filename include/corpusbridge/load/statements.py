"""Every SQL statement of the load stage, in one place (its one table of its own, for vectors, is temporary)."""

from __future__ import annotations

BATCH = "SELECT shard_count, status, manifest_sha256 FROM export_batches WHERE batch_id = %s"

LEDGER_ROW = "SELECT result_sha256 FROM load_ledger WHERE batch_id = %s AND shard = %s"

# Concept rows go straight into the final table; the batch and shard are constant columns the load appends.
COPY_CONCEPTS = (
    "COPY document_concepts (doc_id, concept_id, start_offset, end_offset, sentence, matched, batch_id, shard) "
    "FROM STDIN (FORMAT csv)"
)

# Temporary and dropped at commit: a killed load leaves nothing behind, and concurrent sessions never collide.
CREATE_VECTORS_TEMP = (
    "CREATE TEMP TABLE load_vectors_temp (doc_id text NOT NULL, embedding vector(384) NOT NULL) ON COMMIT DROP"
)
COPY_VECTORS = "COPY load_vectors_temp (doc_id, embedding) FROM STDIN (FORMAT binary)"
# Documents a result names (read from its files) that the export did not put into this shard: loading them would
# attach concepts to the wrong batch, so the shard is refused.
STRAY_DOCS = """
    SELECT r.doc_id FROM unnest(%(docs)s::text[]) AS r (doc_id)
    WHERE NOT EXISTS (
        SELECT 1 FROM export_batch_documents d
        WHERE d.batch_id = %(batch)s AND d.shard = %(shard)s AND d.doc_id = r.doc_id
    )
    ORDER BY r.doc_id LIMIT 10
"""

# A document processed again has its previous rows replaced, never duplicated: delete every concept and vector of
# the shard's documents, whichever batch wrote them. A concepts-only result keeps a document's vector unless the
# document's text changed since that vector was computed (then it describes text that is gone). The shard's ids
# go in as one array (`= ANY` probes the primary key): a join may scan the whole table for 25,000 documents.
SHARD_DOC_IDS = "ARRAY(SELECT doc_id FROM export_batch_documents WHERE batch_id = %(batch)s AND shard = %(shard)s)"
DELETE_CONCEPTS = "DELETE FROM document_concepts WHERE doc_id = ANY (" + SHARD_DOC_IDS + ")"
DELETE_VECTORS = (
    """
    DELETE FROM document_vectors v USING export_batch_documents d
    WHERE v.doc_id = ANY ("""
    + SHARD_DOC_IDS
    + """)
      AND d.batch_id = %(batch)s AND d.doc_id = v.doc_id
      AND (%(has_vectors)s OR NOT EXISTS (
          SELECT 1 FROM document_results r WHERE r.doc_id = d.doc_id AND r.clean_seq = d.clean_seq))
"""
)

INSERT_VECTORS = """
    INSERT INTO document_vectors (doc_id, embedding, batch_id, shard)
    SELECT doc_id, embedding, %(batch)s, %(shard)s FROM load_vectors_temp
"""

INSERT_LEDGER = """
    INSERT INTO load_ledger (batch_id, shard, result_sha256, run_id, run_label, code_version, dictionary_version,
                             model_hash, embedding_runtime, image_digest, docs, concepts, vectors, backend, slurm_job,
                             host)
    VALUES (%(batch)s, %(shard)s, %(result_sha256)s, %(run_id)s, %(run_label)s, %(code_version)s,
            %(dictionary_version)s, %(model_hash)s, %(embedding_runtime)s, %(image_digest)s, %(docs)s,
            %(concepts)s, %(vectors)s, %(backend)s, %(slurm_job)s, %(host)s)
"""

# Runs after DELETE_VECTORS, which reads the clean_seq this overwrites.
# Every document of the shard, with or without concepts, is recorded as processed with this dictionary and model:
# what the export's default selection reads to send only new work.
UPSERT_RESULTS = """
    INSERT INTO document_results (doc_id, batch_id, shard, clean_seq, dictionary_version, model_hash)
    SELECT doc_id, batch_id, shard, clean_seq, %(dictionary_version)s, %(model_hash)s
    FROM export_batch_documents WHERE batch_id = %(batch)s AND shard = %(shard)s
    ON CONFLICT (doc_id) DO UPDATE SET
        batch_id = EXCLUDED.batch_id, shard = EXCLUDED.shard, clean_seq = EXCLUDED.clean_seq,
        dictionary_version = EXCLUDED.dictionary_version, loaded_at = now(),
        -- a concepts-only result keeps the model of the vector it kept (same text), else names the new one
        model_hash = CASE WHEN %(has_vectors)s THEN EXCLUDED.model_hash
                          WHEN document_results.clean_seq = EXCLUDED.clean_seq THEN document_results.model_hash
                     END
"""

MARK_LOADED = """
    UPDATE export_batches b SET status = 'loaded'
    WHERE b.batch_id = %s AND b.status <> 'loaded'
      AND (SELECT count(*) FROM load_ledger l WHERE l.batch_id = b.batch_id) >= b.shard_count
"""

# --- reconciliation -----------------------------------------------------------------------------------------------

DOCS_EXPORTED = "SELECT count(*) FROM export_batch_documents WHERE batch_id = %s"
DOCS_PROCESSED = "SELECT coalesce(sum(docs), 0) FROM load_ledger WHERE batch_id = %s"

# A batch's document is loaded when its shard is in the ledger and the document's result row is this batch's, or
# a later load's (the document was processed again since).
_LOADED = """
    EXISTS (
        SELECT 1 FROM load_ledger l JOIN document_results r ON r.doc_id = d.doc_id
        WHERE l.batch_id = d.batch_id AND l.shard = d.shard
          AND (r.batch_id = d.batch_id OR r.loaded_at > l.loaded_at)
    )
"""
MISSING_DOCS = (
    "SELECT d.doc_id FROM export_batch_documents d WHERE d.batch_id = %s AND NOT " + _LOADED + " ORDER BY d.doc_id"
)

# --- status, similar, concepts ------------------------------------------------------------------------------------

LAST_RUNS = """
    SELECT DISTINCT ON (stage) stage, run_id, status, started_at, finished_at, seconds, error, counts
    FROM stage_runs ORDER BY stage, run_id DESC
"""
RUN_COUNTS = "SELECT stage, status, count(*) FROM stage_runs GROUP BY stage, status ORDER BY stage, status"
LAST_LOAD = """
    SELECT run_id, status, batch_id, reconciliation, finished_at FROM load_runs
    WHERE reconciliation IS NOT NULL ORDER BY run_id DESC LIMIT 1
"""
LEDGER_SHARDS = "SELECT count(*) FROM load_ledger WHERE batch_id = %s"
# Batches exported but not (completely) loaded: a failed or interrupted run's, which a rerun with the same options
# (or `corpusbridge load`) finishes, or `export --abandon` gives up.
UNFINISHED_BATCHES = """
    SELECT b.batch_id, b.shard_count, (SELECT count(*) FROM load_ledger l WHERE l.batch_id = b.batch_id), b.rows,
           b.created_at, b.manifest_path
    FROM export_batches b WHERE b.status = 'exported' ORDER BY b.created_at
"""
# Rows: the live rows the statistics system counts as rows are written (right after a load, before any ANALYZE
# has set reltuples), else the planner's estimate (statistics are reset after a crash; reltuples is -1 until the
# first ANALYZE).
TABLE_SIZES = """
    SELECT c.relname,
           (CASE WHEN pg_stat_get_live_tuples(c.oid) > 0 OR c.reltuples < 0 THEN pg_stat_get_live_tuples(c.oid)
                 ELSE c.reltuples END)::bigint,
           pg_total_relation_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(%s)
    ORDER BY c.relname
"""

VECTOR_OF = "SELECT embedding::text FROM document_vectors WHERE doc_id = %s"
# ORDER BY the distance to a constant, in a subquery of its own, is what lets the planner walk the HNSW index.
NEAREST = """
    SELECT v.doc_id, c.title, 1 - v.distance AS similarity
    FROM (
        SELECT doc_id, embedding <=> %(vector)s::vector AS distance FROM document_vectors
        ORDER BY embedding <=> %(vector)s::vector LIMIT %(limit)s
    ) v LEFT JOIN clean_documents c ON c.doc_id = v.doc_id
    ORDER BY v.distance, v.doc_id
"""
# The index returns at most ef_search candidates (default 40); a longer list needs a wider search.
SET_EF_SEARCH = "SELECT set_config('hnsw.ef_search', %s, true)"
TITLE_OF = "SELECT title FROM clean_documents WHERE doc_id = %s"
REJECTED = "SELECT reason, detail FROM sanitize_rejects WHERE doc_id = %s"
CONCEPTS_OF = """
    SELECT concept_id, start_offset, end_offset, sentence, matched, batch_id, shard
    FROM document_concepts WHERE doc_id = %s ORDER BY start_offset, concept_id
"""
RESULT_OF = """
    SELECT r.batch_id, r.shard, r.dictionary_version, r.model_hash, r.loaded_at, l.run_label
    FROM document_results r JOIN load_ledger l USING (batch_id, shard) WHERE r.doc_id = %s
"""
