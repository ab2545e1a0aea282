"""The ingest stage: discover -> compare with the ledger -> parse, copy in and merge chunks in parallel -> reconcile.

Run bookkeeping (lock, run row, progress) is the run contract of `corpusbridge.runs`; the SQL is in
`corpusbridge.ingest.statements`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import psycopg

from corpusbridge.config import worker_count
from corpusbridge.ingest import statements, workers
from corpusbridge.ingest.chunk import ChunkOutcome, ingest_chunk
from corpusbridge.ingest.copy_in import FileTask
from corpusbridge.ingest.discover import require_source_dir, walk_files
from corpusbridge.ingest.workers import CHUNK_FILES
from corpusbridge.processes import worker_pool
from corpusbridge.runs import (
    ProgressCallback,
    ProgressMeter,
    RunSummary,
    Stage,
    StageBusy,
    recorded_run,
    stage_lock,
    start_run,
)

log = logging.getLogger(__name__)

# Bytes to megabytes in progress lines.
_MB = 1e6


class IngestAlreadyRunning(StageBusy):
    """Another ingest holds the ingest lock on this database (one at a time: they would fight over the ledger)."""


@dataclass
class IngestSummary(RunSummary):
    """What one run did; `records_seen = records_loaded + records_duplicate + records_quarantined` always holds."""

    columns: ClassVar[tuple[str, ...]] = (
        "files_seen", "files_new", "files_changed", "files_unchanged", "records_seen", "records_loaded",
        "records_duplicate", "records_quarantined", "bytes_read", "files_skipped",
    )  # fmt: skip

    source_dir: str = ""
    files_seen: int = 0
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    records_seen: int = 0
    records_loaded: int = 0
    records_duplicate: int = 0
    records_quarantined: int = 0
    bytes_read: int = 0
    quarantine_by_class: dict[str, int] = field(default_factory=dict)
    files_skipped: dict[str, int] = field(default_factory=dict)  # not listed, by kind (hidden entries, ...)
    files_vanished: int = 0  # listed by an earlier run under this folder, gone now (their records stay)

    @property
    def reconciled(self) -> bool:
        return self.records_seen == self.records_loaded + self.records_duplicate + self.records_quarantined


@dataclass(frozen=True)
class IngestOptions:
    limit_files: int | None = None
    workers: int | None = None
    chunk_files: int = CHUNK_FILES
    record_cap: int = 16 * 1024 * 1024


def run_ingest(
    conn: psycopg.Connection,
    source_dir: str | Path,
    options: IngestOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> IngestSummary:
    """Ingest new and changed files under `source_dir`. Safe to rerun and to kill: a rerun finishes the job.

    `progress` receives files, records and MB done (with their rates) every few seconds and at the end.
    """
    options = options or IngestOptions()
    root = Path(source_dir).absolute()
    require_source_dir(root)  # a typo, not a run: nothing is recorded
    try:
        with stage_lock(conn, Stage.INGEST):
            summary = IngestSummary(
                run_id=start_run(conn, Stage.INGEST, {"source_dir": str(root)}), source_dir=str(root)
            )
            with recorded_run(conn, Stage.INGEST, summary):
                _ingest(conn, root, options, summary, progress)
    except StageBusy as exc:  # only the lock raises it: nothing inside the run takes another stage's lock
        raise IngestAlreadyRunning(Stage.INGEST, f"{exc} (ingest of {root} not started)") from exc
    _log_reconciliation(summary)
    return summary


def _ingest(
    conn: psycopg.Connection,
    root: Path,
    options: IngestOptions,
    summary: IngestSummary,
    progress: ProgressCallback | None,
) -> None:
    n_workers = options.workers or worker_count()
    with ExitStack() as stack:
        pool = stack.enter_context(_started_pool(conn, n_workers)) if n_workers > 1 else None
        # Autocommit: a transaction held open for the whole run would pin the xmin horizon, so VACUUM could not
        # reclaim the chunk rows each merge deletes, and every later merge would wade through all of them.
        scan_conn = stack.enter_context(psycopg.connect(workers.conninfo_of(conn), autocommit=True))
        tasks = _pending_files(scan_conn, root, options, summary)
        meter = ProgressMeter(Stage.INGEST, progress, total=summary.files_new + summary.files_changed, unit="files")
        log.info("ingest: %d files to read (%d new, %d with another size or mtime: those whose bytes did not change "
                 "count as unchanged after)", meter.total, summary.files_new, summary.files_changed)  # fmt: skip
        chunks = _chunks(tasks, options.chunk_files)
        for outcome in _run_chunks(conn, summary.run_id, chunks, options, pool, n_workers):
            _account(summary, outcome)
            meter.advance(
                len(outcome.files),
                records=sum(r.records_seen for r in outcome.files),
                MB=sum(r.bytes_read for r in outcome.files) / _MB,
            )
    summary.quarantine_by_class = _quarantine_classes(conn, summary.run_id)
    meter.report()


def _log_reconciliation(summary: IngestSummary) -> None:
    log.info(
        "ingest run %s: %d records seen = %d loaded + %d duplicate + %d quarantined%s",
        summary.run_id, summary.records_seen, summary.records_loaded, summary.records_duplicate,
        summary.records_quarantined, "" if summary.reconciled else "  ** COUNTS DO NOT RECONCILE **",
    )  # fmt: skip


def _account(summary: IngestSummary, outcome: ChunkOutcome) -> None:
    summary.records_loaded += outcome.counts.records_loaded
    summary.records_duplicate += outcome.counts.records_duplicate
    summary.records_quarantined += outcome.counts.records_quarantined
    for result in outcome.files:
        summary.records_seen += result.records_seen
        summary.bytes_read += result.bytes_read
        if result.unchanged:  # the stat changed, the bytes did not
            summary.files_changed -= 1
            summary.files_unchanged += 1


def _pending_files(
    scan_conn: psycopg.Connection, root: Path, options: IngestOptions, summary: IngestSummary
) -> Iterator[FileTask]:
    """New and stat-changed files, from one set-based comparison against the ledger, streamed from the server.

    The walk is COPYed into a temp table, so neither the walk nor the pending list is ever held in memory.
    """
    scan_conn.execute(statements.CREATE_FOUND_FILES)
    skipped = Counter[str]()
    with scan_conn.cursor().copy(statements.COPY_FOUND_FILES) as copy:
        for found in walk_files(root, options.limit_files, skipped):
            copy.write_row((found.path, found.size, found.mtime_ns))
    summary.files_skipped = dict(sorted(skipped.items()))
    scan_conn.execute(statements.CREATE_PENDING)
    scan_conn.execute(statements.PENDING_KEY)
    seen, new, same = scan_conn.execute(statements.PENDING_COUNTS).fetchone() or (0, 0, 0)
    summary.files_seen, summary.files_new, summary.files_unchanged = seen, new, same
    summary.files_changed = seen - new - same
    if options.limit_files is None:  # a partial walk cannot tell a gone file from one it did not reach
        row = scan_conn.execute(statements.VANISHED, (str(root).rstrip("/") + "/",)).fetchone()
        summary.files_vanished = int(row[0]) if row else 0
        if summary.files_vanished:
            log.warning("ingest: %d files ingested before from %s are gone (their records stay loaded)",
                        summary.files_vanished, root)  # fmt: skip
    return _stream_tasks(scan_conn)


def _stream_tasks(scan_conn: psycopg.Connection, page: int = 10_000) -> Iterator[FileTask]:
    """Pending files in walk order, a page per short statement."""
    last = 0
    while True:
        rows = scan_conn.execute(statements.PENDING_PAGE, (last, page)).fetchall()
        if not rows:
            return
        for file_no, path, size, mtime_ns, sha, is_new in rows:
            yield FileTask(file_no, path, size, mtime_ns, None if is_new else sha)
        last = rows[-1][0]


def _started_pool(conn: psycopg.Connection, n_workers: int) -> ProcessPoolExecutor:
    """Parser workers, started now (one no-op call each) so that their start overlaps the listing.

    They are spawned, not forked: they must not hold this process's connections (and with them the ingest lock)
    open after it dies, and they die with it (`corpusbridge.processes`).
    """
    pool = worker_pool(n_workers, workers.init, (workers.conninfo_of(conn),))
    for _ in range(n_workers):
        pool.submit(int)
    return pool


def _run_chunks(
    conn: psycopg.Connection,
    run_id: int,
    chunks: Iterator[list[FileTask]],
    options: IngestOptions,
    pool: ProcessPoolExecutor | None,
    n_workers: int,
) -> Iterator[ChunkOutcome]:
    """Outcomes of the chunks, from the pool's `n_workers` or, without a pool, from this process."""
    if pool is None:
        with workers.open_worker_connection(workers.conninfo_of(conn)) as worker_conn:
            for chunk in chunks:
                yield ingest_chunk(worker_conn, run_id, chunk, options.record_cap)
        return
    yield from _parallel(pool, n_workers, run_id, chunks, options)


def _chunks(tasks: Iterator[FileTask], size: int) -> Iterator[list[FileTask]]:
    chunk: list[FileTask] = []
    for task in tasks:
        chunk.append(task)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parallel(
    pool: ProcessPoolExecutor, n_workers: int, run_id: int, chunks: Iterator[list[FileTask]], options: IngestOptions
) -> Iterator[ChunkOutcome]:
    """Each worker parses, copies in and merges whole chunks on its own connection; the loader only hands them out."""
    look_ahead = 2 * n_workers  # bounded look-ahead keeps memory flat
    pending: set[Future[ChunkOutcome]] = set()
    exhausted = False
    while not exhausted or pending:
        while not exhausted and len(pending) < look_ahead:
            chunk = next(chunks, None)
            exhausted = chunk is None
            if chunk is not None:
                pending.add(pool.submit(workers.run_chunk, run_id, chunk, options.record_cap))
        if not pending:
            break
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield future.result()


def _quarantine_classes(conn: psycopg.Connection, run_id: int) -> dict[str, int]:
    rows = conn.execute(statements.QUARANTINE_CLASSES, (run_id,)).fetchall()
    conn.commit()
    return {cls: int(n) for cls, n in rows}
