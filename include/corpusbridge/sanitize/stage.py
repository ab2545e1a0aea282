"""The sanitize stage: raw documents changed since the last run -> clean documents or rejects, in batches.

Incremental through the raw `change_seq` watermark; idempotent because a clean row is rewritten only when
its `clean_hash` changes; each batch is one transaction (COPY into staging, then set-based statements), so a
crash loses at most one batch and a rerun converges to the state of one clean run.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context

import psycopg

from corpusbridge import __version__
from corpusbridge.config import worker_count
from corpusbridge.ingest.run import _INGEST_LOCK_KEY
from corpusbridge.processes import reset_inherited_signals
from corpusbridge.sanitize import statements
from corpusbridge.sanitize.records import CleanRecord, RawDocument, Reject, sanitize_record

log = logging.getLogger(__name__)

_LOCK_KEY = 0x636C6E73  # "clns": one sanitize run at a time per database
DEFAULT_BATCH = 2000
# Below this many documents a batch is cleaned in-process: shipping it to workers would cost more than it saves.
_PARALLEL_MIN_BATCH = 500
Cleaner = Callable[[list[RawDocument]], list["CleanRecord | Reject"]]
# `raw` is read only where sanitizing needs it (an OpenAlex work whose abstract ingestion did not rebuild):
# for XML formats it holds the whole record again, which would double what every batch reads.
_RAW_COLUMNS = (
    "doc_id, source_format, title, abstract, full_text, authors, year, venue, language,"
    " CASE WHEN source_format = 'openalex' AND abstract IS NULL"
    " THEN jsonb_build_object('abstract_inverted_index', raw->'abstract_inverted_index') END, change_seq"
)


@dataclass
class SanitizeSummary:
    """What one run did; `docs_in = docs_clean + docs_rejected` always holds."""

    run_id: int
    from_seq: int
    to_seq: int
    docs_in: int = 0
    docs_clean: int = 0
    docs_rejected: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    duplicates_linked: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    status: str = "running"

    @property
    def docs_per_second(self) -> float:
        return self.docs_in / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "docs_per_second": round(self.docs_per_second, 1)}


@dataclass(frozen=True)
class Progress:
    docs_done: int
    docs_total: int
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.docs_done / self.seconds if self.seconds else 0.0


ProgressCallback = Callable[[Progress], None]


class SanitizeBusyError(RuntimeError):
    """Another sanitize run, or an ingestion, is writing this database right now: retry when it has finished."""


def run_sanitize(
    conn: psycopg.Connection,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
    code_version: str = __version__,
    workers: int | None = None,
) -> SanitizeSummary:
    """Sanitize every raw document changed since the last successful run; returns the run's counts.

    Cleaning (pure Python, the costly part) runs in `workers` processes (default: the cores granted);
    the database work stays on this connection, one transaction per batch.
    """
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        conn.rollback()
        raise SanitizeBusyError("another `corpusbridge sanitize` run is in progress on this database; wait for it")
    try:
        summary = _start_run(conn, code_version)
        with _cleaner(workers or worker_count()) as clean:
            _run_batches(conn, summary, batch_size, progress, code_version, clean)
        return summary
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        conn.commit()


def _start_run(conn: psycopg.Connection, code_version: str) -> SanitizeSummary:
    from_seq, to_seq = _watermarks(conn)
    run_id = conn.execute(statements.INSERT_RUN, (code_version, from_seq, to_seq)).fetchone()[0]  # type: ignore[index]
    conn.commit()
    return SanitizeSummary(run_id=run_id, from_seq=from_seq, to_seq=to_seq)


@contextmanager
def _cleaner(workers: int) -> Iterator[Cleaner]:
    """A function cleaning one batch, in-process or across a process pool (results keep the batch order)."""

    def in_process(batch: list[RawDocument]) -> list[CleanRecord | Reject]:
        return [sanitize_record(raw) for raw in batch]

    if workers <= 1:
        yield in_process
        return
    context = get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=reset_inherited_signals) as pool:

        def parallel(batch: list[RawDocument]) -> list[CleanRecord | Reject]:
            if len(batch) < _PARALLEL_MIN_BATCH:
                return in_process(batch)
            return list(pool.map(sanitize_record, batch, chunksize=max(1, len(batch) // (workers * 4))))

        yield parallel


def _watermarks(conn: psycopg.Connection) -> tuple[int, int]:
    """(last run's upper bound, newest change_seq), read while no ingestion is writing.

    An ingest transaction still in flight may hold change_seq values below the newest visible one; reading the
    upper bound under ingestion's lock (held for a moment only) means no such row can be skipped.
    """
    if not conn.execute("SELECT pg_try_advisory_lock_shared(%s)", (_INGEST_LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        conn.rollback()
        raise SanitizeBusyError("an ingestion run is writing raw documents; run sanitize when it has finished")
    try:
        from_seq, to_seq = conn.execute(statements.WATERMARKS).fetchone()  # type: ignore[misc]
    finally:
        conn.execute("SELECT pg_advisory_unlock_shared(%s)", (_INGEST_LOCK_KEY,))
    return from_seq, to_seq


def _run_batches(
    conn: psycopg.Connection,
    summary: SanitizeSummary,
    batch_size: int,
    progress: ProgressCallback | None,
    code_version: str,
    clean: Cleaner,
) -> None:
    started = time.monotonic()
    total = conn.execute(statements.COUNT_PENDING, (summary.from_seq, summary.to_seq)).fetchone()[0]  # type: ignore[index]
    try:
        last = summary.from_seq
        while batch := _read_batch(conn, last, summary.to_seq, batch_size):
            _apply_batch(conn, summary, clean(batch), code_version)
            last = batch[-1].change_seq
            summary.seconds = time.monotonic() - started
            _save_counts(conn, summary, "running")
            conn.commit()
            if progress:
                progress(Progress(summary.docs_in, total, summary.seconds))
    except BaseException as exc:
        conn.rollback()
        summary.seconds = time.monotonic() - started
        _save_counts(conn, summary, "failed", f"{type(exc).__name__}: {exc}")
        conn.commit()
        raise
    summary.seconds = time.monotonic() - started
    _save_counts(conn, summary, "succeeded")
    conn.commit()


def _read_batch(conn: psycopg.Connection, after: int, upto: int, limit: int) -> list[RawDocument]:
    query = (
        f"SELECT {_RAW_COLUMNS} FROM raw_documents WHERE change_seq > %s AND change_seq <= %s "
        "ORDER BY change_seq LIMIT %s"
    )
    return [RawDocument(*row) for row in conn.execute(query, (after, upto, limit))]


def _apply_batch(
    conn: psycopg.Connection, summary: SanitizeSummary, results: list[CleanRecord | Reject], code_version: str
) -> None:
    """Stage the batch with COPY, then move it with set-based statements; all in the caller's transaction."""
    conn.execute(statements.CLEAR_STAGING)
    _copy_to_staging(conn, results)
    affected = conn.execute(statements.AFFECTED_HASHES).fetchone()[0] or []  # type: ignore[index]
    params = {"run_id": summary.run_id, "code_version": code_version}
    written = 0
    for statement in statements.MOVE_BATCH:
        written += conn.execute(statement, params).rowcount
    written += conn.execute(statements.RELINK_DUPLICATES, {"hashes": affected}).rowcount
    summary.duplicates_linked += conn.execute(statements.COUNT_LINKED).fetchone()[0]  # type: ignore[index]
    conn.execute(statements.CLEAR_STAGING)
    _count(summary, results, written)


def _count(summary: SanitizeSummary, results: list[CleanRecord | Reject], written: int) -> None:
    reasons = Counter(r.reason.value for r in results if isinstance(r, Reject))
    summary.docs_in += len(results)
    summary.docs_rejected += sum(reasons.values())
    summary.docs_clean += len(results) - sum(reasons.values())
    summary.reject_reasons = dict(Counter(summary.reject_reasons) + reasons)
    summary.rows_written += written


def _copy_to_staging(conn: psycopg.Connection, results: Iterable[CleanRecord | Reject]) -> None:
    with conn.cursor().copy(statements.COPY_STAGING) as copy:
        for result in results:
            copy.write_row(_staging_row(result))


def _staging_row(result: CleanRecord | Reject) -> tuple:
    if isinstance(result, Reject):
        return (result.doc_id, result.source_seq, "rejected") + (None,) * 12 + (result.reason.value, result.detail)
    r = result
    return (
        r.doc_id,
        r.source_seq,
        "clean",
        r.source_format,
        r.title,
        r.abstract,
        r.full_text,
        json.dumps(r.authors, ensure_ascii=False),
        r.year,
        r.venue,
        r.language,
        r.language_from,
        r.notes,
        r.text_hash,
        r.clean_hash,
        None,
        None,
    )


def _save_counts(conn: psycopg.Connection, summary: SanitizeSummary, status: str, error: str | None = None) -> None:
    summary.status = status
    conn.execute(
        statements.UPDATE_RUN,
        {**asdict(summary), "reject_reasons": json.dumps(summary.reject_reasons), "error": error},
    )
