"""The SQL of the sanitize stage, kept apart from the Python that sequences it (the run row is `corpusbridge.runs`).

Everything that moves rows is set-based over `sanitize_staging` rows of this session (`pg_backend_pid()`),
and every write is guarded so that an unchanged document produces no row version at all.
"""

from __future__ import annotations

from typing import LiteralString

_MINE = "session_pid = pg_backend_pid()"

WATERMARKS: LiteralString = """
    SELECT w.from_seq, greatest(w.from_seq, coalesce((SELECT max(change_seq) FROM raw_documents), 0))
    FROM (SELECT coalesce(max(to_seq), 0) AS from_seq FROM sanitize_runs WHERE status = 'succeeded') w
"""

COUNT_PENDING: LiteralString = "SELECT count(*) FROM raw_documents WHERE change_seq > %s AND change_seq <= %s"

CLEAR_STAGING: LiteralString = f"DELETE FROM sanitize_staging WHERE {_MINE}"

COPY_STAGING: LiteralString = """
    COPY sanitize_staging (doc_id, source_seq, outcome, source_format, title, abstract, full_text, authors, year,
        venue, language, language_from, notes, text_hash, clean_hash, reason, detail) FROM STDIN
"""

# Hash groups whose canonical document may change: the new hashes and the old hashes of rewritten rows.
AFFECTED_HASHES: LiteralString = f"""
    SELECT array_agg(DISTINCT h) FROM (
        SELECT text_hash AS h FROM sanitize_staging WHERE {_MINE} AND text_hash IS NOT NULL
        UNION ALL
        SELECT c.text_hash FROM clean_documents c JOIN sanitize_staging s ON s.doc_id = c.doc_id AND s.{_MINE}
        WHERE c.text_hash IS NOT NULL AND c.clean_hash IS DISTINCT FROM s.clean_hash
    ) hashes
"""

UPSERT_CLEAN: LiteralString = f"""
    INSERT INTO clean_documents (doc_id, source_format, title, abstract, full_text, authors, year, venue, language,
        language_from, notes, text_hash, canonical_id, clean_hash, source_seq, run_id, code_version)
    SELECT doc_id, source_format, title, abstract, full_text, authors, year, venue, language, language_from, notes,
        text_hash, doc_id, clean_hash, source_seq, %(run_id)s, %(code_version)s
    FROM sanitize_staging WHERE {_MINE} AND outcome = 'clean'
    ON CONFLICT (doc_id) DO UPDATE SET source_format = EXCLUDED.source_format, title = EXCLUDED.title,
        abstract = EXCLUDED.abstract, full_text = EXCLUDED.full_text, authors = EXCLUDED.authors,
        year = EXCLUDED.year, venue = EXCLUDED.venue, language = EXCLUDED.language,
        language_from = EXCLUDED.language_from, notes = EXCLUDED.notes, text_hash = EXCLUDED.text_hash,
        canonical_id = EXCLUDED.canonical_id, clean_hash = EXCLUDED.clean_hash, source_seq = EXCLUDED.source_seq,
        clean_seq = nextval('clean_document_seq'), run_id = EXCLUDED.run_id, code_version = EXCLUDED.code_version,
        updated_at = now()
    WHERE clean_documents.clean_hash IS DISTINCT FROM EXCLUDED.clean_hash
"""

# A document that was clean and is now rejected leaves the clean table and leaves a removal for indexes.
REMOVE_REJECTED: LiteralString = f"""
    WITH gone AS (
        DELETE FROM clean_documents c USING sanitize_staging s
        WHERE s.{_MINE} AND s.outcome = 'rejected' AND c.doc_id = s.doc_id
        RETURNING c.doc_id
    )
    INSERT INTO clean_document_removals (doc_id, run_id) SELECT doc_id, %(run_id)s FROM gone
"""

UPSERT_REJECTS: LiteralString = f"""
    INSERT INTO sanitize_rejects (doc_id, reason, detail, source_seq, run_id)
    SELECT doc_id, reason, detail, source_seq, %(run_id)s FROM sanitize_staging WHERE {_MINE} AND outcome = 'rejected'
    ON CONFLICT (doc_id) DO UPDATE SET reason = EXCLUDED.reason, detail = EXCLUDED.detail,
        source_seq = EXCLUDED.source_seq, run_id = EXCLUDED.run_id, created_at = now()
    WHERE (sanitize_rejects.reason, sanitize_rejects.detail) IS DISTINCT FROM (EXCLUDED.reason, EXCLUDED.detail)
"""

FORGIVE_REJECTS: LiteralString = f"""
    DELETE FROM sanitize_rejects j USING sanitize_staging s
    WHERE s.{_MINE} AND s.outcome = 'clean' AND j.doc_id = s.doc_id
"""

MOVE_BATCH: tuple[LiteralString, ...] = (UPSERT_CLEAN, REMOVE_REJECTED, UPSERT_REJECTS, FORGIVE_REJECTS)

# The canonical document of an exact-duplicate group is its smallest doc_id: the same whatever the arrival order.
RELINK_DUPLICATES: LiteralString = """
    UPDATE clean_documents c SET canonical_id = g.canonical_id, clean_seq = nextval('clean_document_seq')
    FROM (
        SELECT text_hash, min(doc_id) AS canonical_id FROM clean_documents
        WHERE text_hash = ANY(%(hashes)s::text[]) GROUP BY text_hash
    ) g
    WHERE c.text_hash = g.text_hash AND c.canonical_id <> g.canonical_id
"""

COUNT_LINKED: LiteralString = f"""
    SELECT count(*) FROM clean_documents c JOIN sanitize_staging s ON s.doc_id = c.doc_id AND s.{_MINE}
    WHERE c.canonical_id <> c.doc_id
"""

# --- reading a batch, and the rejects listing ------------------------------------------------------------------------

# `raw` is read only where sanitizing needs it (an OpenAlex work whose abstract ingestion did not rebuild):
# for XML formats it holds the whole record again, which would double what every batch reads.
READ_BATCH: LiteralString = """
    SELECT doc_id, source_format, title, abstract, full_text, authors, year, venue, language,
        CASE WHEN source_format = 'openalex' AND abstract IS NULL
             THEN jsonb_build_object('abstract_inverted_index', raw->'abstract_inverted_index') END,
        change_seq
    FROM raw_documents WHERE change_seq > %s AND change_seq <= %s
    ORDER BY change_seq LIMIT %s
"""

LATEST_REJECTS: LiteralString = """
    SELECT doc_id, reason, detail, run_id FROM sanitize_rejects ORDER BY created_at DESC, doc_id LIMIT %s
"""
