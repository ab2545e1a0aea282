"""Loader side: move a batch of staged files into the raw tables with set-based statements, atomically.

Within and across runs the same rule picks which copy of a document wins: the newest file (mtime), then the
path, then the position in the file. So the final rows do not depend on batching, worker timing or crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from corpusbridge.ingest.staging import FileResult


@dataclass(frozen=True)
class BatchCounts:
    records_loaded: int
    records_duplicate: int
    records_quarantined: int


# Count before the upsert: a document already touched by this run (an earlier batch) is a duplicate.
_COUNT = """
SELECT count(*) FILTER (WHERE kind = 'record'),
       count(DISTINCT doc_id) FILTER (WHERE kind = 'record' AND NOT EXISTS (
           SELECT 1 FROM raw_documents r WHERE r.doc_id = s.doc_id AND r.last_run_id = %(run)s)),
       count(*) FILTER (WHERE kind = 'quarantine')
FROM ingest_staging s WHERE file_no = ANY(%(files)s)
"""

_NEWER = ("(EXCLUDED.source_mtime_ns, EXCLUDED.source_file, EXCLUDED.source_ordinal) >= "
          "(d.source_mtime_ns, d.source_file, d.source_ordinal)")  # fmt: skip
_CHANGED = f"({_NEWER} AND EXCLUDED.content_hash <> d.content_hash)"
_CONTENT = ("source_format", "title", "abstract", "full_text", "authors", "year", "venue", "language", "raw",
            "content_hash")  # fmt: skip
_UPSERT = f"""
INSERT INTO raw_documents AS d (doc_id, source_format, source_file, source_mtime_ns, source_ordinal, title, abstract,
    full_text, authors, year, venue, language, raw, content_hash, last_run_id)
SELECT DISTINCT ON (doc_id) doc_id, source_format, source_file, mtime_ns, ordinal, title, abstract, full_text, authors,
    year, venue, language, raw, content_hash, %(run)s
FROM ingest_staging WHERE file_no = ANY(%(files)s) AND kind = 'record'
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

_PROVENANCE = """
INSERT INTO document_sources (doc_id, source_file, locator, content_hash, run_id)
SELECT doc_id, source_file, locator, content_hash, %(run)s
FROM ingest_staging WHERE file_no = ANY(%(files)s) AND kind = 'record'
ON CONFLICT (doc_id, source_file, locator) DO UPDATE
    SET content_hash = EXCLUDED.content_hash, run_id = EXCLUDED.run_id, seen_at = now()
"""

_QUARANTINE = """
INSERT INTO quarantine (run_id, source_file, locator, error_class, message, raw, raw_truncated)
SELECT %(run)s, source_file, locator, error_class, message, raw_bytes, raw_truncated
FROM ingest_staging WHERE file_no = ANY(%(files)s) AND kind = 'quarantine'
ORDER BY file_no, ordinal
"""

_LEDGER = """
INSERT INTO source_files (path, size_bytes, mtime_ns, sha256, format, status, records_seen, records_quarantined,
    run_id)
VALUES (%(path)s, %(size)s, %(mtime_ns)s, %(sha256)s, %(format)s, %(status)s, %(seen)s, %(quarantined)s, %(run)s)
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


def merge_batch(conn: psycopg.Connection, run_id: int, results: Sequence[FileResult]) -> BatchCounts:
    """One transaction: replace what re-read files said before, upsert documents, record provenance and ledger."""
    parsed = [r for r in results if not r.unchanged]
    files = [r.file_no for r in parsed]
    params = {"run": run_id, "files": files}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_COUNT, params)
        records, loaded, quarantined = cur.fetchone() or (0, 0, 0)
        paths = [r.path for r in parsed]
        cur.execute("DELETE FROM document_sources WHERE source_file = ANY(%s)", (paths,))
        cur.execute("DELETE FROM quarantine WHERE source_file = ANY(%s)", (paths,))
        cur.execute(_UPSERT, params)
        cur.execute(_PROVENANCE, params)
        cur.execute(_QUARANTINE, params)
        cur.executemany(_LEDGER, [_ledger_row(r, run_id) for r in results])
        cur.execute("DELETE FROM ingest_staging WHERE file_no = ANY(%s)", (files,))
    return BatchCounts(loaded, records - loaded, quarantined)


def _ledger_row(result: FileResult, run_id: int) -> dict:
    return {
        "path": result.path, "size": result.size, "mtime_ns": result.mtime_ns, "sha256": result.sha256,
        "format": result.format, "status": _status(result), "seen": result.records_seen,
        "quarantined": result.records_quarantined, "run": run_id,
    }  # fmt: skip
