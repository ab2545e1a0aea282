"""Parser-worker side: parse a chunk of files and COPY their items into `ingest_staging` in one transaction.

A worker that dies mid-chunk leaves nothing behind (its transaction rolls back); the files are simply not in
the ledger yet, so the next run reads them again.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from corpusbridge.hashing import file_sha256
from corpusbridge.ingest.parse import DEFAULT_RECORD_CAP, FileParse, parse_file
from corpusbridge.ingest.records import QUARANTINE_RAW_CAP, Quarantined, Record

log = logging.getLogger(__name__)

STAGING_COLUMNS = (
    "file_no", "kind", "source_file", "mtime_ns", "ordinal", "locator", "doc_id", "source_format", "title",
    "abstract", "full_text", "authors", "year", "venue", "language", "raw", "content_hash", "error_class",
    "message", "raw_bytes", "raw_truncated",
)  # fmt: skip
_COPY = "COPY ingest_staging ({}) FROM STDIN".format(", ".join(STAGING_COLUMNS))


@dataclass(frozen=True)
class FileTask:
    file_no: int
    path: str
    size: int
    mtime_ns: int
    known_sha256: str | None  # the ledger's hash when the file was seen before


@dataclass(frozen=True)
class FileResult:
    file_no: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    format: str
    unchanged: bool  # stat changed but the bytes did not: nothing was parsed
    records_seen: int
    records_quarantined: int
    bytes_read: int


def stage_files(conn: psycopg.Connection, tasks: list[FileTask], cap: int = DEFAULT_RECORD_CAP) -> list[FileResult]:
    """Stage a chunk of files in ONE transaction and COPY (a round trip per file would dominate small files).

    If a file breaks the parser or the COPY, the chunk is redone file by file so only that file is quarantined.
    """
    try:
        with conn.transaction(), conn.cursor() as cur:
            _no_commit_flush(cur)
            with cur.copy(_COPY) as copy:
                return [_stage_into(copy, task, cap) for task in tasks]
    except (psycopg.OperationalError, psycopg.InterfaceError, OSError):
        raise  # infrastructure: the run fails and a rerun resumes
    except Exception as exc:
        log.warning("a file in this chunk broke staging (%s); staging the chunk file by file", _one_line(exc))
    return [stage_file(conn, task, cap) for task in tasks]


def stage_file(conn: psycopg.Connection, task: FileTask, cap: int = DEFAULT_RECORD_CAP) -> FileResult:
    """Stage one file in its own transaction; content that breaks the parser quarantines the file whole."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            _no_commit_flush(cur)
            with cur.copy(_COPY) as copy:
                return _stage_into(copy, task, cap)
    except (psycopg.OperationalError, psycopg.InterfaceError, OSError):
        raise
    except Exception as exc:
        log.warning("%s: parser could not stage the file (%s); quarantining it whole", task.path, exc)
        return _quarantine_whole_file(conn, task, exc)


def _stage_into(copy: psycopg.Copy, task: FileTask, cap: int) -> FileResult:
    if task.known_sha256 is not None:
        digest = file_sha256(Path(task.path))
        if digest == task.known_sha256:  # touched, not changed: nothing to parse
            return FileResult(task.file_no, task.path, task.size, task.mtime_ns, digest, "", True, 0, 0, task.size)
    info = FileParse()
    counts = [0, 0]
    _write_items(copy, task, parse_file(Path(task.path), info, cap), counts)
    return FileResult(
        task.file_no, task.path, task.size, task.mtime_ns, info.sha256, info.format, False, counts[0], counts[1],
        info.bytes_read,
    )  # fmt: skip


def _no_commit_flush(cur: psycopg.Cursor) -> None:
    """Staging rows are re-derivable (their file is not in the ledger until merged), so a commit need not wait
    for the WAL flush; without this, one fsync per small file dominates ingestion."""
    cur.execute("SET LOCAL synchronous_commit TO off")


def _write_items(copy: psycopg.Copy, task: FileTask, items: Iterator[Record | Quarantined], counts: list[int]) -> None:
    """COPY every item; counts = [records seen, records quarantined]."""
    for ordinal, item in enumerate(items):
        counts[0] += 1
        if isinstance(item, Record):
            row = _record_row(task, ordinal, item)
            if not isinstance(row, Quarantined):
                copy.write_row(row)
                continue
            item = row
        counts[1] += 1
        copy.write_row(_quarantine_row(task, ordinal, item))


def _record_row(task: FileTask, ordinal: int, record: Record) -> tuple | Quarantined:
    try:
        raw = record.raw_json or json.dumps(record.raw, ensure_ascii=False, allow_nan=False)
        authors = json.dumps(record.authors, ensure_ascii=False)
        texts = (record.title, record.abstract, record.full_text, record.venue, record.language, raw, authors)
        for text in texts:
            if text is not None:
                text.encode("utf-8")  # lone surrogates would abort the whole COPY
                if "\x00" in text:
                    raise ValueError("NUL character")
    except (UnicodeEncodeError, ValueError) as exc:
        kept = json.dumps(record.raw, ensure_ascii=True, default=repr).encode("ascii")  # escapes always encode
        return Quarantined.of(record.locator, "InvalidUnicode", f"record text cannot be stored: {exc}", kept)
    return (
        task.file_no, "record", task.path, task.mtime_ns, ordinal, record.locator, record.doc_id,
        record.source_format, record.title, record.abstract, record.full_text, authors, record.year, record.venue,
        record.language, raw, record.content_hash(), None, None, None, None,
    )  # fmt: skip


def _quarantine_row(task: FileTask, ordinal: int, item: Quarantined) -> tuple:
    return (
        task.file_no, "quarantine", task.path, task.mtime_ns, ordinal, item.locator, None, None, None, None,
        None, None, None, None, None, None, None, item.error_class, item.message, item.raw, item.raw_truncated,
    )  # fmt: skip


def _quarantine_whole_file(conn: psycopg.Connection, task: FileTask, exc: BaseException) -> FileResult:
    with open(task.path, "rb") as f:
        head = f.read(QUARANTINE_RAW_CAP + 1)
    item = Quarantined.of("file", f"ParserFailure:{type(exc).__name__}", _one_line(exc), head)
    with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY) as copy:
        copy.write_row(_quarantine_row(task, 0, item))
    digest = file_sha256(Path(task.path))
    return FileResult(task.file_no, task.path, task.size, task.mtime_ns, digest, "unknown", False, 1, 1, task.size)


def _one_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}"[:500] + where
