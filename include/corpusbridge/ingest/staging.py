"""Parser-worker side: parse one file and COPY its items into `ingest_staging` in one transaction.

A worker that dies mid-file leaves nothing behind (its transaction rolls back); the file is simply not in
the ledger yet, so the next run reads it again.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path

import psycopg

from corpusbridge.ingest.parse import DEFAULT_RECORD_CAP, FileParse, parse_file
from corpusbridge.ingest.reader import sha256_file
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


def stage_file(conn: psycopg.Connection, task: FileTask, cap: int = DEFAULT_RECORD_CAP) -> FileResult:
    """Parse `task.path` into staging; a parser bug quarantines the file instead of failing the run."""
    if task.known_sha256 is not None:
        digest = sha256_file(Path(task.path))
        if digest == task.known_sha256:
            return FileResult(task.file_no, task.path, task.size, task.mtime_ns, digest, "", True, 0, 0, task.size)
    try:
        return _copy_items(conn, task, cap)
    except (psycopg.OperationalError, psycopg.InterfaceError, OSError):
        raise  # infrastructure: the run fails and a rerun resumes
    except Exception as exc:
        # Content that broke the parser or the COPY: keep the file, whole, as one quarantine item.
        log.warning("%s: parser could not stage the file (%s); quarantining it whole", task.path, exc)
        return _quarantine_whole_file(conn, task, exc)


def _copy_items(conn: psycopg.Connection, task: FileTask, cap: int) -> FileResult:
    info = FileParse()
    seen = quarantined = 0
    with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY) as copy:
        for ordinal, item in enumerate(parse_file(Path(task.path), info, cap)):
            seen += 1
            if isinstance(item, Record):
                row = _record_row(task, ordinal, item)
                if isinstance(row, Quarantined):
                    item = row
                else:
                    copy.write_row(row)
                    continue
            quarantined += 1
            copy.write_row(_quarantine_row(task, ordinal, item))
    return FileResult(
        task.file_no, task.path, task.size, task.mtime_ns, info.sha256, info.format, False, seen, quarantined,
        info.bytes_read,
    )  # fmt: skip


def _record_row(task: FileTask, ordinal: int, record: Record) -> tuple | Quarantined:
    try:
        raw = json.dumps(record.raw, ensure_ascii=False, allow_nan=False)
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
    digest = sha256_file(Path(task.path))
    return FileResult(task.file_no, task.path, task.size, task.mtime_ns, digest, "unknown", False, 1, 1, task.size)


def _one_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}"[:500] + where
