"""Move one chunk of files from its chunk table into the raw tables with set-based statements, in its transaction.

Within and across runs the same rule picks which copy of a document wins: the newest file (mtime), then the
path, then the position in the file. So the final rows do not depend on chunking, worker timing or crashes,
and parser workers can merge their own chunks side by side. The SQL is in `corpusbridge.ingest.statements`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import LiteralString

import psycopg

from corpusbridge.ingest import statements
from corpusbridge.ingest.copy_in import FileResult

# PostgreSQL 18 can return the row an upsert replaced, which makes duplicate counting exact under concurrency.
RETURNING_OLD_SINCE = 180000


@dataclass(frozen=True)
class BatchCounts:
    records_loaded: int
    records_duplicate: int
    records_quarantined: int


def _status(result: FileResult) -> str:
    if result.records_quarantined == 0:
        return "loaded"
    return "quarantined" if result.records_quarantined == result.records_seen else "partial"


def merge_chunk(cur: psycopg.Cursor, run_id: int, results: Sequence[FileResult]) -> BatchCounts:
    """Replace what re-read files said before, upsert documents, record provenance, quarantine and ledger.

    Runs in the caller's transaction, the one that copied the chunk in: a file is in the ledger exactly when its
    documents are merged.
    """
    params = {"run": run_id}
    records, quarantined = _fetch_counts(cur, statements.CHUNK_KINDS, params)
    seen_before = [r.path for r in results if r.seen_before and not r.unchanged]
    if seen_before:
        cur.execute(statements.FORGET_SOURCES, (seen_before,))
        cur.execute(statements.FORGET_QUARANTINE, (seen_before,))
    loaded = 0
    if records:
        loaded = _upsert_documents(cur, params)
        cur.execute(statements.UPSERT_PROVENANCE, params)
    if quarantined:
        cur.execute(statements.INSERT_QUARANTINE, params)
    cur.execute(statements.UPSERT_LEDGER, _ledger_params(results, run_id))
    return BatchCounts(loaded, records - loaded, quarantined)


def _upsert_documents(cur: psycopg.Cursor, params: dict) -> int:
    """Upsert the chunk's documents and return how many this run had not touched before."""
    if cur.connection.info.server_version >= RETURNING_OLD_SINCE:
        return _fetch_counts(cur, statements.UPSERT_DOCUMENTS_COUNTING, params)[0]
    cur.execute(statements.TAKE_COUNT_LOCK, (statements.COUNT_LOCK_KEY,))
    loaded = _fetch_counts(cur, statements.FIRST_TOUCHES, params)[0]
    cur.execute(statements.UPSERT_DOCUMENTS, params)
    return loaded


def _fetch_counts(cur: psycopg.Cursor, query: LiteralString, params: dict) -> tuple[int, ...]:
    cur.execute(query, params)
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
