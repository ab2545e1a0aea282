"""Files recorded whole, without their records: refused before reading, or quarantined after breaking the parser.

Either way the file gets one quarantine entry with the reason, counts as one record seen and quarantined (so a
run's counts still reconcile), and takes its ledger row in the same transaction. Refused files that may read fine
later (gone, unreadable, changed while listed) get an impossible mtime in the ledger so the next run tries again.
"""

from __future__ import annotations

import hashlib
import logging
import os

import psycopg

from corpusbridge.ingest import statements
from corpusbridge.ingest.copy_in import FileResult, FileTask, one_line
from corpusbridge.ingest.merge import merge_chunk
from corpusbridge.ingest.reader import FileRefused, open_listed
from corpusbridge.ingest.records import QUARANTINE_RAW_CAP

log = logging.getLogger(__name__)

RETRY_MTIME_NS = -1  # never a file's mtime: the next run sees the file as changed and reads it again
_STABLE = {"NotRegularFile"}  # a symlink or FIFO stays one: recorded once, not again every run
_READ = 1 << 20


def record_refused(conn: psycopg.Connection, run_id: int, task: FileTask, refused: FileRefused) -> FileResult:
    """A listed file that was not read (FileRefused says why): one quarantine entry; nothing of it is read."""
    log.warning("%s: %s (%s); recorded in the quarantine", task.path, refused.message, refused.error_class)
    mtime = task.mtime_ns if refused.error_class in _STABLE else RETRY_MTIME_NS
    result = FileResult(
        task.file_no, task.path, task.size, mtime, "", "refused", False, task.known_sha256 is not None, 1, 1, 0
    )
    return _record(conn, run_id, result, refused.error_class, refused.message, b"")


def quarantine_whole_file(conn: psycopg.Connection, run_id: int, task: FileTask, exc: BaseException) -> FileResult:
    """Content that breaks the parser itself: the file is quarantined whole, with its head and the reason."""
    try:
        fd, _ = open_listed(task.path)
    except FileRefused as refused:
        return record_refused(conn, run_id, task, refused)
    with os.fdopen(fd, "rb") as f:
        head, digest, size = _head_and_digest(f)
    log.warning("%s: parser could not stage the file (%s); quarantining it whole", task.path, one_line(exc))
    result = FileResult(
        task.file_no, task.path, task.size, task.mtime_ns, digest, "unknown", False, task.known_sha256 is not None,
        1, 1, size,
    )  # fmt: skip
    return _record(conn, run_id, result, f"ParserFailure:{type(exc).__name__}", one_line(exc), head)


def _head_and_digest(f) -> tuple[bytes, str, int]:  # type: ignore[no-untyped-def]
    head = f.read(QUARANTINE_RAW_CAP + 1)
    sha, size = hashlib.sha256(head), len(head)
    while chunk := f.read(_READ):
        sha.update(chunk)
        size += len(chunk)
    return head, sha.hexdigest(), size


def _record(
    conn: psycopg.Connection, run_id: int, result: FileResult, error_class: str, message: str, raw: bytes
) -> FileResult:
    with conn.transaction(), conn.cursor() as cur:
        merge_chunk(cur, run_id, [result])  # ledger row; drops what an earlier read of this file said
        kept = raw[:QUARANTINE_RAW_CAP]
        cur.execute(
            statements.QUARANTINE_WHOLE_FILE, (run_id, result.path, error_class, message, kept, len(raw) > len(kept))
        )
    return result
