"""A chunk of files staged and merged in ONE transaction: the unit of work, of parallelism and of crash safety.

Parser workers each run whole chunks on their own connection, so the server work of merging runs on every core
instead of on the loader alone. A file enters the ledger in the same transaction as its documents: a crash
anywhere leaves each file either fully merged or not in the ledger (and read again by the next run).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors

from corpusbridge.ingest import statements
from corpusbridge.ingest.copy_in import FileResult, FileTask, copy_chunk, one_line
from corpusbridge.ingest.discover import NON_UTF8_PREFIX
from corpusbridge.ingest.merge import BatchCounts, merge_chunk
from corpusbridge.ingest.reader import FileRefused, Identity, checked_files, open_listed
from corpusbridge.ingest.whole_file import quarantine_whole_file, record_refused

log = logging.getLogger(__name__)

# Two workers upserting the same documents lock them in doc_id order, so deadlocks should not happen; if the
# server still reports one (or a serialization failure), the chunk is simply redone.
_ATTEMPTS = 3
_INFRASTRUCTURE = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass(frozen=True)
class ChunkOutcome:
    files: list[FileResult]
    counts: BatchCounts


def ingest_chunk(conn: psycopg.Connection, run_id: int, tasks: list[FileTask], cap: int) -> ChunkOutcome:
    """Stage and merge a chunk; content that breaks it is isolated by redoing the chunk file by file.

    Every file is first checked to still be the regular file that was listed (no symlink followed, no FIFO
    waited on); the others are recorded with the reason and the rest of the chunk goes on.
    """
    checked: dict[str, Identity] = {}
    outcomes = []
    for task in tasks:
        try:
            fd, checked[task.path] = open_listed(task.path, task.size, task.mtime_ns)
            os.close(fd)
        except FileRefused as refused:
            outcomes.append(_whole(lambda t=task, r=refused: record_refused(conn, run_id, t, r)))
    readable = [task for task in tasks if task.path in checked]
    if readable:
        with checked_files(checked):
            outcomes.append(_stage_readable(conn, run_id, readable, cap))
    return _combine(outcomes)


def _stage_readable(conn: psycopg.Connection, run_id: int, tasks: list[FileTask], cap: int) -> ChunkOutcome:
    try:
        return _retrying(lambda: _stage_and_merge(conn, run_id, tasks, cap))
    except Exception as exc:
        if _is_infrastructure(exc, tasks):
            raise  # the run fails; a rerun resumes with the files not yet in the ledger
        log.warning("a file in this chunk broke staging (%s); redoing the chunk file by file", one_line(exc))
    return _combine([_one_file(conn, run_id, task, cap) for task in tasks])


def _one_file(conn: psycopg.Connection, run_id: int, task: FileTask, cap: int) -> ChunkOutcome:
    try:
        return _retrying(lambda: _stage_and_merge(conn, run_id, [task], cap))
    except Exception as exc:
        if _is_infrastructure(exc, [task]):
            raise
        failure = exc  # `exc` is unbound once the handler ends; the retry closure needs it
    if isinstance(failure, OSError):  # the file went away or changed while it was read
        refused = failure if isinstance(failure, FileRefused) else _as_refused(task, failure)
        return _whole(lambda: record_refused(conn, run_id, task, refused))
    return _whole(lambda: quarantine_whole_file(conn, run_id, task, failure))


def _is_infrastructure(exc: BaseException, tasks: Sequence[FileTask]) -> bool:
    """Database and machine failures fail the run; an OSError about one of the chunk's own files does not."""
    if isinstance(exc, FileRefused):
        return False
    if isinstance(exc, OSError):
        return exc.filename is None or os.fspath(exc.filename) not in {task.path for task in tasks}
    return isinstance(exc, _INFRASTRUCTURE)


def _as_refused(task: FileTask, exc: OSError) -> FileRefused:
    error_class = "FileVanished" if isinstance(exc, (FileNotFoundError, NotADirectoryError)) else "Unreadable"
    return FileRefused(task.path, error_class, f"could not be read: {exc.strerror or exc}", exc.errno or 0)


def _whole(record) -> ChunkOutcome:  # type: ignore[no-untyped-def]
    return ChunkOutcome([_retrying(record)], BatchCounts(0, 0, 1))


def _stage_and_merge(conn: psycopg.Connection, run_id: int, tasks: list[FileTask], cap: int) -> ChunkOutcome:
    with conn.transaction(), conn.cursor() as cur:
        _commit_without_flush_wait(cur)
        results = copy_chunk(cur, _hashable_by_name(cur, tasks), cap)
        return ChunkOutcome(results, merge_chunk(cur, run_id, results))


def _hashable_by_name(cur: psycopg.Cursor, tasks: list[FileTask]) -> list[FileTask]:
    """Files listed under an escaped non-UTF-8 name cannot be hashed by name: they are read whole instead of
    compared by hash, so here, as the merge does for re-read files, what they said before is dropped first."""
    escaped = [t.path for t in tasks if t.known_sha256 is not None and t.path.startswith(NON_UTF8_PREFIX)]
    if not escaped:
        return tasks
    cur.execute(statements.FORGET_SOURCES, (escaped,))
    cur.execute(statements.FORGET_QUARANTINE, (escaped,))
    return [FileTask(t.file_no, t.path, t.size, t.mtime_ns, None) if t.path in escaped else t for t in tasks]


def _commit_without_flush_wait(cur: psycopg.Cursor) -> None:
    """A chunk commits without waiting for its WAL flush (one fsync per chunk would dominate small files).

    Safe because the ledger rows travel in the same transaction: a server crash loses recent chunks whole and
    the next run reads those files again. The run's final status is committed with a flush, which makes every
    chunk before it durable, so a run recorded as succeeded lost nothing.
    """
    cur.execute("SET LOCAL synchronous_commit TO off")


def _retrying(attempt):  # type: ignore[no-untyped-def]
    for number in range(1, _ATTEMPTS + 1):
        try:
            return attempt()
        except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
            if number == _ATTEMPTS:
                raise
            log.warning("chunk conflicted with another worker (%s); redoing it (attempt %d)", one_line(exc), number)
    raise AssertionError("unreachable")


def _combine(outcomes: list[ChunkOutcome]) -> ChunkOutcome:
    counts = BatchCounts(
        sum(o.counts.records_loaded for o in outcomes),
        sum(o.counts.records_duplicate for o in outcomes),
        sum(o.counts.records_quarantined for o in outcomes),
    )
    return ChunkOutcome([f for o in outcomes for f in o.files], counts)
