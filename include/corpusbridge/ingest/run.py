"""The ingestion run: discover -> compare with the ledger -> parse, stage and merge chunks in parallel -> reconcile."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import psycopg

from corpusbridge import __version__
from corpusbridge.config import worker_count
from corpusbridge.ingest import workers
from corpusbridge.ingest.chunk import ChunkOutcome, ingest_chunk
from corpusbridge.ingest.discover import walk_files
from corpusbridge.ingest.progress import Progress
from corpusbridge.ingest.staging import FileTask
from corpusbridge.ingest.workers import CHUNK_FILES

log = logging.getLogger(__name__)

# One ingest at a time per database: two would fight over the ledger and the staging table.
_INGEST_LOCK_KEY = 0x696E6773  # "ings"


class IngestAlreadyRunning(RuntimeError):
    pass


@dataclass
class IngestSummary:
    run_id: int
    source_dir: str
    files_seen: int = 0
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    records_seen: int = 0
    records_loaded: int = 0
    records_duplicate: int = 0
    records_quarantined: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    quarantine_by_class: dict[str, int] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return self.records_seen == self.records_loaded + self.records_duplicate + self.records_quarantined

    def as_dict(self) -> dict:
        return asdict(self) | {"reconciled": self.reconciled}


@dataclass(frozen=True)
class IngestOptions:
    limit_files: int | None = None
    workers: int | None = None
    chunk_files: int = CHUNK_FILES
    record_cap: int = 16 * 1024 * 1024


def run_ingest(conn: psycopg.Connection, source_dir: str | Path, options: IngestOptions | None = None) -> IngestSummary:
    """Ingest new and changed files under `source_dir`. Safe to rerun and to kill: a rerun finishes the job."""
    options = options or IngestOptions()
    root = Path(source_dir).absolute()
    _take_lock(conn)
    try:
        summary = IngestSummary(run_id=_start_run(conn, root), source_dir=str(root))
        started = time.monotonic()
        try:
            _ingest(conn, root, options, summary)
        except BaseException as exc:
            _finish_run(conn, summary, "failed", time.monotonic() - started, repr(exc)[:2000])
            raise
        _finish_run(conn, summary, "succeeded", time.monotonic() - started)
        return summary
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_INGEST_LOCK_KEY,))
        conn.commit()


def _take_lock(conn: psycopg.Connection) -> None:
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_INGEST_LOCK_KEY,)).fetchone()
    conn.commit()
    if not (got and got[0]):
        raise IngestAlreadyRunning("another ingest is running against this database; wait for it to finish")


def _start_run(conn: psycopg.Connection, root: Path) -> int:
    with conn.transaction():
        conn.execute("UPDATE ingest_runs SET status = 'failed', error = 'interrupted' WHERE status = 'running'")
        row = conn.execute(
            "INSERT INTO ingest_runs (source_dir, code_version) VALUES (%s, %s) RETURNING run_id",
            (str(root), __version__),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _ingest(conn: psycopg.Connection, root: Path, options: IngestOptions, summary: IngestSummary) -> None:
    # Autocommit: a transaction held open for the whole run would pin the xmin horizon, so VACUUM could not reclaim
    # the staging rows each merge deletes, and every later merge would wade through all of them.
    with psycopg.connect(workers.conninfo_of(conn), autocommit=True) as scan_conn:
        tasks = _pending_files(scan_conn, root, options, summary)
        progress = Progress(log, total_files=summary.files_new + summary.files_changed)
        for outcome in _run_chunks(conn, summary.run_id, tasks, options):
            progress.files_parsed(outcome.files)
            _account(summary, outcome)
    summary.quarantine_by_class = _quarantine_classes(conn, summary.run_id)
    progress.done(summary)


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
    scan_conn.execute("CREATE TEMP TABLE found_files (file_no bigserial, path text, size bigint, mtime_ns bigint)")
    with scan_conn.cursor().copy("COPY found_files (path, size, mtime_ns) FROM STDIN") as copy:
        for found in walk_files(root, options.limit_files):
            copy.write_row((found.path, found.size, found.mtime_ns))
    scan_conn.execute(
        """CREATE TEMP TABLE pending AS
           SELECT f.file_no, f.path, f.size, f.mtime_ns, l.sha256, l.path IS NULL AS is_new,
                  l.path IS NOT NULL AND l.size_bytes = f.size AND l.mtime_ns = f.mtime_ns AS same_stat
           FROM found_files f LEFT JOIN source_files l USING (path)"""
    )
    scan_conn.execute("ALTER TABLE pending ADD PRIMARY KEY (file_no)")
    seen, new, same = scan_conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE same_stat) FROM pending"
    ).fetchone() or (0, 0, 0)
    summary.files_seen, summary.files_new, summary.files_unchanged = seen, new, same
    summary.files_changed = seen - new - same
    return _stream_tasks(scan_conn)


def _stream_tasks(scan_conn: psycopg.Connection, page: int = 10_000) -> Iterator[FileTask]:
    """Pending files in walk order, a page per short statement (keyset pagination: no long-lived snapshot)."""
    last = 0
    while True:
        rows = scan_conn.execute(
            """SELECT file_no, path, size, mtime_ns, sha256, is_new FROM pending
               WHERE NOT same_stat AND file_no > %s ORDER BY file_no LIMIT %s""",
            (last, page),
        ).fetchall()
        if not rows:
            return
        for file_no, path, size, mtime_ns, sha, is_new in rows:
            yield FileTask(file_no, path, size, mtime_ns, None if is_new else sha)
        last = rows[-1][0]


def _run_chunks(
    conn: psycopg.Connection, run_id: int, tasks: Iterator[FileTask], options: IngestOptions
) -> Iterator[ChunkOutcome]:
    chunks = _chunks(tasks, options.chunk_files)
    n_workers = options.workers or worker_count()
    if n_workers <= 1:
        with workers.open_worker_connection(workers.conninfo_of(conn)) as worker_conn:
            for chunk in chunks:
                yield ingest_chunk(worker_conn, run_id, chunk, options.record_cap)
        return
    yield from _parallel(conn, run_id, chunks, options, n_workers)


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
    conn: psycopg.Connection, run_id: int, chunks: Iterator[list[FileTask]], options: IngestOptions, n_workers: int
) -> Iterator[ChunkOutcome]:
    """Each worker parses, stages and merges whole chunks on its own connection; the loader only hands them out."""
    context = get_context("fork")
    initargs = (workers.conninfo_of(conn),)
    with ProcessPoolExecutor(n_workers, mp_context=context, initializer=workers.init, initargs=initargs) as pool:
        pending: set[Future[ChunkOutcome]] = set()
        exhausted = False
        while not exhausted or pending:
            while not exhausted and len(pending) < n_workers * 2:  # bounded look-ahead keeps memory flat
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
    rows = conn.execute(
        "SELECT error_class, count(*) FROM quarantine WHERE run_id = %s GROUP BY 1 ORDER BY 2 DESC, 1", (run_id,)
    ).fetchall()
    conn.commit()
    return {cls: int(n) for cls, n in rows}


def _finish_run(
    conn: psycopg.Connection, summary: IngestSummary, status: str, seconds: float, error: str | None = None
) -> None:
    conn.rollback()
    summary.seconds = round(seconds, 3)
    counters = {k: v for k, v in summary.as_dict().items() if k.startswith(("files_", "records_")) or k == "bytes_read"}
    assignments = ", ".join(f"{k} = %({k})s" for k in counters)
    with conn.transaction():
        conn.execute(
            f"UPDATE ingest_runs SET {assignments}, status = %(status)s, seconds = %(seconds)s, error = %(error)s, "
            "finished_at = now() WHERE run_id = %(run_id)s",  # column names come from the dataclass, not input
            counters | {"status": status, "seconds": summary.seconds, "error": error, "run_id": summary.run_id},
        )
