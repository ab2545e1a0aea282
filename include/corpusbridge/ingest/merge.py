"""Move one chunk of staged files into the raw tables with set-based statements, inside the chunk's transaction.

Within and across runs the same rule picks which copy of a document wins: the newest file (mtime), then the
path, then the position in the file. So the final rows do not depend on chunking, worker timing or crashes,
and parser workers can merge their own chunks side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from corpusbridge.ingest.staging import STAGING_TABLE, FileResult

# PostgreSQL 18 can return the row an upsert replaced, which makes duplicate counting exact under concurrency.
RETURNING_OLD_SINCE = 180000
# Older servers: merges count then upsert under this lock, one at a time (the rest of a chunk stays parallel).
_COUNT_LOCK_KEY = 0x6D726765  # "mrge"


@dataclass(frozen=True)
class BatchCounts:
    records_loaded: int
    records_duplicate: int
    records_quarantined: int


_KINDS = f"""
SELECT count(*) FILTER (WHERE kind = 'record'), count(*) FILTER (WHERE kind = 'quarantine') FROM {STAGING_TABLE}
"""

_NEWER = ("(EXCLUDED.source_mtime_ns, EXCLUDED.source_file, EXCLUDED.source_ordinal) >= "
          "(d.source_mtime_ns, d.source_file, d.source_ordinal)")  # fmt: skip
_CHANGED = f"({_NEWER} AND EXCLUDED.content_hash <> d.content_hash)"
_CONTENT = ("source_format", "title", "abstract", "full_text", "authors", "year", "venue", "language", "raw",
            "content_hash")  # fmt: skip
# Rows are inserted in doc_id order, so two workers upserting overlapping documents lock them in the same order.
_UPSERT = f"""
INSERT INTO raw_documents AS d (doc_id, source_format, source_file, source_mtime_ns, source_ordinal, title, abstract,
    full_text, authors, year, venue, language, raw, content_hash, last_run_id)
SELECT DISTINCT ON (doc_id) doc_id, source_format, source_file, mtime_ns, ordinal, title, abstract, full_text,
    authors::jsonb, year, venue, language, raw::jsonb, content_hash, %(run)s
FROM {STAGING_TABLE} WHERE kind = 'record'
ORDER BY doc_id, mtime_ns DESC, source_file DESC, ordinal DESC
ON CONFLICT (doc_id) DO UPDATE SET
    {", ".join(f"{c} = CASE WHEN {_NEWER} THEN EXCLUDED.{c} ELSE d.{c} END" for c in _CONTENT)},
    source_file = CASE WHEN {_NEWER} THEN EXCLUDED.source_file ELSE d.source_file END,
    source_ordinal = CASE WHEN {_NEWER} THEN EXCLUDED.source_ordinal ELSE d.source_ordinal END,
    source_mtime_ns = CASE WHEN {_NEWER} THEN EXCLUDED.source_mtime_ns ELSE d.source_mtime_ns END,
    change_seq = CASE WHEN {_CHANGED} THEN nextval('raw_document_change_seq') ELSE d.change_seq END,
    last_seen = now(),
    last_run_id = EXCLUDED.last_run_id
"""
# A document is "loaded" the first time this run touches it; any later copy, in this chunk or another, is a duplicate.
_UPSERT_COUNTING = f"""
WITH touched AS ({_UPSERT} RETURNING old.last_run_id AS before)
SELECT count(*) FILTER (WHERE before IS DISTINCT FROM %(run)s) FROM touched
"""
_FIRST_TOUCHES = f"""
SELECT count(DISTINCT doc_id) FROM {STAGING_TABLE} s WHERE kind = 'record' AND NOT EXISTS (
    SELECT 1 FROM raw_documents r WHERE r.doc_id = s.doc_id AND r.last_run_id = %(run)s)
"""

_PROVENANCE = f"""
INSERT INTO document_sources (doc_id, source_file, locator, content_hash, run_id)
SELECT doc_id, source_file, locator, content_hash, %(run)s FROM {STAGING_TABLE} WHERE kind = 'record'
ON CONFLICT (source_file, locator) DO UPDATE
    SET doc_id = EXCLUDED.doc_id, content_hash = EXCLUDED.content_hash, run_id = EXCLUDED.run_id, seen_at = now()
"""

_QUARANTINE = f"""
INSERT INTO quarantine (run_id, source_file, locator, error_class, message, raw, raw_truncated)
SELECT %(run)s, source_file, locator, error_class, message, raw_bytes, raw_truncated
FROM {STAGING_TABLE} WHERE kind = 'quarantine'
ORDER BY file_no, ordinal
"""

# One statement for the chunk's ledger rows (a statement per file was a tenth of the merge time).
_LEDGER = """
INSERT INTO source_files (path, size_bytes, mtime_ns, sha256, format, status, records_seen, records_quarantined,
    run_id)
SELECT path, size, mtime_ns, sha256, format, status, seen, quarantined, %(run)s
FROM unnest(%(paths)s::text[], %(sizes)s::bigint[], %(mtimes)s::bigint[], %(sha256s)s::text[], %(formats)s::text[],
            %(statuses)s::text[], %(seen)s::bigint[], %(quarantined)s::bigint[])
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


def _status(result: FileResult) -> str:
    if result.records_quarantined == 0:
        return "loaded"
    return "quarantined" if result.records_quarantined == result.records_seen else "partial"


def merge_staged(cur: psycopg.Cursor, run_id: int, results: Sequence[FileResult]) -> BatchCounts:
    """Replace what re-read files said before, upsert documents, record provenance, quarantine and ledger.

    Runs in the caller's transaction, the one that staged the chunk: a file is in the ledger exactly when its
    documents are merged.
    """
    params = {"run": run_id}
    records, quarantined = _fetch_counts(cur, _KINDS, params)
    seen_before = [r.path for r in results if r.seen_before and not r.unchanged]
    if seen_before:
        cur.execute("DELETE FROM document_sources WHERE source_file = ANY(%s)", (seen_before,))
        cur.execute("DELETE FROM quarantine WHERE source_file = ANY(%s)", (seen_before,))
    loaded = 0
    if records:
        loaded = _upsert_documents(cur, params)
        cur.execute(_PROVENANCE, params)
    if quarantined:
        cur.execute(_QUARANTINE, params)
    cur.execute(_LEDGER, _ledger_params(results, run_id))
    return BatchCounts(loaded, records - loaded, quarantined)


def _upsert_documents(cur: psycopg.Cursor, params: dict) -> int:
    """Upsert the chunk's documents and return how many this run had not touched before."""
    if cur.connection.info.server_version >= RETURNING_OLD_SINCE:
        return _fetch_counts(cur, _UPSERT_COUNTING, params)[0]
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_COUNT_LOCK_KEY,))
    loaded = _fetch_counts(cur, _FIRST_TOUCHES, params)[0]
    cur.execute(_UPSERT, params)
    return loaded


def _fetch_counts(cur: psycopg.Cursor, query: str, params: dict) -> tuple[int, ...]:
    cur.execute(query, params)  # type: ignore[arg-type]  # module constants, values bound as parameters
    row = cur.fetchone()
    assert row is not None
    return tuple(int(v or 0) for v in row)


def _ledger_params(results: Sequence[FileResult], run_id: int) -> dict:
    return {
        "run": run_id, "paths": [r.path for r in results], "sizes": [r.size for r in results],
        "mtimes": [r.mtime_ns for r in results], "sha256s": [r.sha256 for r in results],
        "formats": [r.format for r in results], "statuses": [_status(r) for r in results],
        "seen": [r.records_seen for r in results], "quarantined": [r.records_quarantined for r in results],
    }  # fmt: skip
