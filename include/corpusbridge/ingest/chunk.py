"""A chunk of files staged and merged in ONE transaction: the unit of work, of parallelism and of crash safety.

Parser workers each run whole chunks on their own connection, so the server work of merging runs on every core
instead of on the loader alone. A file enters the ledger in the same transaction as its documents: a crash
anywhere leaves each file either fully merged or not in the ledger (and read again by the next run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import errors

from corpusbridge.ingest.copy_in import FileResult, FileTask, copy_chunk, copy_whole_file_quarantine, one_line
from corpusbridge.ingest.merge import BatchCounts, merge_chunk

log = logging.getLogger(__name__)

# Two workers upserting the same documents lock them in doc_id order, so deadlocks should not happen; if the
# server still reports one (or a serialization failure), the chunk is simply redone.
_ATTEMPTS = 3
_INFRASTRUCTURE = (psycopg.OperationalError, psycopg.InterfaceError, OSError)


@dataclass(frozen=True)
class ChunkOutcome:
    files: list[FileResult]
    counts: BatchCounts


def ingest_chunk(conn: psycopg.Connection, run_id: int, tasks: list[FileTask], cap: int) -> ChunkOutcome:
    """Stage and merge a chunk; content that breaks it is isolated by redoing the chunk file by file."""
    try:
        return _retrying(lambda: _stage_and_merge(conn, run_id, tasks, cap))
    except _INFRASTRUCTURE:
        raise  # the run fails; a rerun resumes with the files not yet in the ledger
    except Exception as exc:
        log.warning("a file in this chunk broke staging (%s); redoing the chunk file by file", one_line(exc))
    return _combine([_one_file(conn, run_id, task, cap) for task in tasks])


def _one_file(conn: psycopg.Connection, run_id: int, task: FileTask, cap: int) -> ChunkOutcome:
    try:
        return _retrying(lambda: _stage_and_merge(conn, run_id, [task], cap))
    except _INFRASTRUCTURE:
        raise
    except Exception as exc:
        failure = exc  # `exc` is unbound once the handler ends; the retry closure needs it
    return _retrying(lambda: _quarantine_whole_file(conn, run_id, task, failure))


def _stage_and_merge(conn: psycopg.Connection, run_id: int, tasks: list[FileTask], cap: int) -> ChunkOutcome:
    with conn.transaction(), conn.cursor() as cur:
        _commit_without_flush_wait(cur)
        results = copy_chunk(cur, tasks, cap)
        return ChunkOutcome(results, merge_chunk(cur, run_id, results))


def _quarantine_whole_file(conn: psycopg.Connection, run_id: int, task: FileTask, exc: BaseException) -> ChunkOutcome:
    with conn.transaction(), conn.cursor() as cur:
        results = [copy_whole_file_quarantine(cur, task, exc)]
        return ChunkOutcome(results, merge_chunk(cur, run_id, results))


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
