"""The SQL of the ingest stage, kept apart from the Python that sequences it.

Three groups: the run's scan of the walk against the ledger (`stage.py`), each worker's chunk table and its binary
COPY (`copy_in.py`), and the set-based merge of a chunk into the raw tables (`merge.py`). Every value is bound as a
parameter; the only composed names are the chunk table's columns.
"""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

# --- the scan: the walk COPYed into a temp table and compared with the ledger in one statement -----------------

CREATE_FOUND_FILES: LiteralString = (
    "CREATE TEMP TABLE found_files (file_no bigserial, path text, size bigint, mtime_ns bigint)"
)
COPY_FOUND_FILES: LiteralString = "COPY found_files (path, size, mtime_ns) FROM STDIN"
CREATE_PENDING: LiteralString = """
    CREATE TEMP TABLE pending AS
    SELECT f.file_no, f.path, f.size, f.mtime_ns, l.sha256, l.path IS NULL AS is_new,
           l.path IS NOT NULL AND l.size_bytes = f.size AND l.mtime_ns = f.mtime_ns AS same_stat
    FROM found_files f LEFT JOIN source_files l USING (path)
"""
PENDING_KEY: LiteralString = "ALTER TABLE pending ADD PRIMARY KEY (file_no)"
PENDING_COUNTS: LiteralString = (
    "SELECT count(*), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE same_stat) FROM pending"
)
# Files listed by an earlier walk of this folder that this walk no longer finds: reported, never deleted (their
# records stay, as the crawl may have moved or pruned them on purpose).
VANISHED: LiteralString = """
    SELECT count(*) FROM source_files l
    WHERE starts_with(l.path, %s) AND NOT EXISTS (SELECT 1 FROM found_files f WHERE f.path = l.path)
"""
# Keyset pagination: each page is a short statement, so no snapshot is held for the whole run.
PENDING_PAGE: LiteralString = """
    SELECT file_no, path, size, mtime_ns, sha256, is_new FROM pending
    WHERE NOT same_stat AND file_no > %s ORDER BY file_no LIMIT %s
"""
QUARANTINE_CLASSES: LiteralString = (
    "SELECT error_class, count(*) FROM quarantine WHERE run_id = %s GROUP BY 1 ORDER BY 2 DESC, 1"
)

# --- a worker's chunk table ----------------------------------------------------------------------------------------

# Shaped like the `ingest_staging` table of the schema (a template only: nothing is written to it); private to each
# worker connection, so neither an index, nor deletes, nor VACUUM of a shared table are needed to tell one chunk's
# rows from another's.
CHUNK_TABLE: LiteralString = "ingest_chunk_rows"
COPY_COLUMNS: tuple[str, ...] = (
    "file_no", "kind", "source_file", "mtime_ns", "ordinal", "locator", "doc_id", "source_format", "title",
    "abstract", "full_text", "authors", "year", "venue", "language", "raw", "content_hash", "error_class",
    "message", "raw_bytes", "raw_truncated",
)  # fmt: skip
# Binary COPY sends no type names: these must match COPY_COLUMNS, in order.
COPY_TYPES: tuple[str, ...] = (
    "int8", "text", "text", "int8", "int8", "text", "text", "text", "text", "text", "text", "text", "int4", "text",
    "text", "text", "text", "text", "text", "bytea", "bool",
)  # fmt: skip
# Binary COPY: half the client CPU of the text format (no escaping of long strings) and less server time.
COPY_CHUNK = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.Identifier(CHUNK_TABLE), sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
)
# Local buffers for the temp table: a chunk's rows (a few MB) stay in memory instead of spilling to disk. It can
# only be set before the session's first temporary table.
SET_TEMP_BUFFERS: LiteralString = "SET temp_buffers = '64MB'"
# Rows stay inline up to a full page: below the default 2 kB target most rows would be moved to a TOAST table
# (its own heap and index) on COPY and fetched back by the merge, a third of the COPY's server time.
CREATE_CHUNK_TABLE: LiteralString = f"""
    CREATE TEMP TABLE {CHUNK_TABLE} (LIKE ingest_staging INCLUDING DEFAULTS INCLUDING STORAGE)
    WITH (toast_tuple_target = 8160) ON COMMIT DELETE ROWS
"""

# --- the merge of one chunk, in the chunk's transaction --------------------------------------------------------------

CHUNK_KINDS: LiteralString = f"""
    SELECT count(*) FILTER (WHERE kind = 'record'), count(*) FILTER (WHERE kind = 'quarantine') FROM {CHUNK_TABLE}
"""
FORGET_SOURCES: LiteralString = "DELETE FROM document_sources WHERE source_file = ANY(%s)"
FORGET_QUARANTINE: LiteralString = "DELETE FROM quarantine WHERE source_file = ANY(%s)"
# Older servers (no `RETURNING old`): merges count then upsert under this lock, one at a time.
COUNT_LOCK_KEY = 0x6D726765  # "mrge"
TAKE_COUNT_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(%s)"

_NEWER: LiteralString = (
    "(EXCLUDED.source_mtime_ns, EXCLUDED.source_file, EXCLUDED.source_ordinal) >= "
    "(d.source_mtime_ns, d.source_file, d.source_ordinal)"
)
_CHANGED: LiteralString = f"({_NEWER} AND EXCLUDED.content_hash <> d.content_hash)"
_CONTENT_UPDATES: LiteralString = """
    source_format = CASE WHEN {newer} THEN EXCLUDED.source_format ELSE d.source_format END,
    title = CASE WHEN {newer} THEN EXCLUDED.title ELSE d.title END,
    abstract = CASE WHEN {newer} THEN EXCLUDED.abstract ELSE d.abstract END,
    full_text = CASE WHEN {newer} THEN EXCLUDED.full_text ELSE d.full_text END,
    authors = CASE WHEN {newer} THEN EXCLUDED.authors ELSE d.authors END,
    year = CASE WHEN {newer} THEN EXCLUDED.year ELSE d.year END,
    venue = CASE WHEN {newer} THEN EXCLUDED.venue ELSE d.venue END,
    language = CASE WHEN {newer} THEN EXCLUDED.language ELSE d.language END,
    raw = CASE WHEN {newer} THEN EXCLUDED.raw ELSE d.raw END,
    content_hash = CASE WHEN {newer} THEN EXCLUDED.content_hash ELSE d.content_hash END,
    source_file = CASE WHEN {newer} THEN EXCLUDED.source_file ELSE d.source_file END,
    source_ordinal = CASE WHEN {newer} THEN EXCLUDED.source_ordinal ELSE d.source_ordinal END,
    source_mtime_ns = CASE WHEN {newer} THEN EXCLUDED.source_mtime_ns ELSE d.source_mtime_ns END,
"""
# Within and across runs the newest file (mtime), then the path, then the position in the file wins. Rows are
# inserted in doc_id order, so two workers upserting overlapping documents lock them in the same order.
UPSERT_DOCUMENTS: LiteralString = f"""
    INSERT INTO raw_documents AS d (doc_id, source_format, source_file, source_mtime_ns, source_ordinal, title,
        abstract, full_text, authors, year, venue, language, raw, content_hash, last_run_id)
    SELECT DISTINCT ON (doc_id) doc_id, source_format, source_file, mtime_ns, ordinal, title, abstract, full_text,
        authors::jsonb, year, venue, language, raw::jsonb, content_hash, %(run)s
    FROM {CHUNK_TABLE} WHERE kind = 'record'
    ORDER BY doc_id, mtime_ns DESC, source_file DESC, ordinal DESC
    ON CONFLICT (doc_id) DO UPDATE SET
        {_CONTENT_UPDATES.replace("{newer}", _NEWER)}
        change_seq = CASE WHEN {_CHANGED} THEN nextval('raw_document_change_seq') ELSE d.change_seq END,
        last_seen = now(),
        last_run_id = EXCLUDED.last_run_id
"""
# A document is "loaded" the first time this run touches it; any later copy, in this chunk or another, is a duplicate.
# Needs PostgreSQL 18 (`RETURNING old`), which makes that count exact under concurrency.
UPSERT_DOCUMENTS_COUNTING: LiteralString = f"""
    WITH touched AS ({UPSERT_DOCUMENTS} RETURNING old.last_run_id AS before)
    SELECT count(*) FILTER (WHERE before IS DISTINCT FROM %(run)s) FROM touched
"""
FIRST_TOUCHES: LiteralString = f"""
    SELECT count(DISTINCT doc_id) FROM {CHUNK_TABLE} s WHERE kind = 'record' AND NOT EXISTS (
        SELECT 1 FROM raw_documents r WHERE r.doc_id = s.doc_id AND r.last_run_id = %(run)s)
"""
UPSERT_PROVENANCE: LiteralString = f"""
    INSERT INTO document_sources (doc_id, source_file, locator, content_hash, run_id)
    SELECT doc_id, source_file, locator, content_hash, %(run)s FROM {CHUNK_TABLE} WHERE kind = 'record'
    ON CONFLICT (source_file, locator) DO UPDATE
        SET doc_id = EXCLUDED.doc_id, content_hash = EXCLUDED.content_hash, run_id = EXCLUDED.run_id, seen_at = now()
"""
INSERT_QUARANTINE: LiteralString = f"""
    INSERT INTO quarantine (run_id, source_file, locator, error_class, message, raw, raw_truncated)
    SELECT %(run)s, source_file, locator, error_class, message, raw_bytes, raw_truncated
    FROM {CHUNK_TABLE} WHERE kind = 'quarantine'
    ORDER BY file_no, ordinal
"""
# A file recorded whole (refused before reading, or broken the parser): one entry for the file (`whole_file.py`).
QUARANTINE_WHOLE_FILE: LiteralString = """
    INSERT INTO quarantine (run_id, source_file, locator, error_class, message, raw, raw_truncated)
    VALUES (%s, %s, 'file', %s, %s, %s, %s)
"""
# One statement for the chunk's ledger rows (a statement per file was a tenth of the merge time). A file whose
# bytes did not change (format '') keeps what it said before.
UPSERT_LEDGER: LiteralString = """
    INSERT INTO source_files (path, size_bytes, mtime_ns, sha256, format, status, records_seen, records_quarantined,
        run_id)
    SELECT path, size, mtime_ns, sha256, format, status, seen, quarantined, %(run)s
    FROM unnest(%(paths)s::text[], %(sizes)s::bigint[], %(mtimes)s::bigint[], %(sha256s)s::text[],
                %(formats)s::text[], %(statuses)s::text[], %(seen)s::bigint[], %(quarantined)s::bigint[])
         AS f (path, size, mtime_ns, sha256, format, status, seen, quarantined)
    ON CONFLICT (path) DO UPDATE SET
        size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns, sha256 = EXCLUDED.sha256,
        format = CASE WHEN EXCLUDED.format = '' THEN source_files.format ELSE EXCLUDED.format END,
        status = CASE WHEN EXCLUDED.format = '' THEN source_files.status ELSE EXCLUDED.status END,
        records_seen = CASE WHEN EXCLUDED.format = '' THEN source_files.records_seen ELSE EXCLUDED.records_seen END,
        records_quarantined = CASE WHEN EXCLUDED.format = '' THEN source_files.records_quarantined
                                   ELSE EXCLUDED.records_quarantined END,
        last_ingested = now(), run_id = EXCLUDED.run_id
"""
