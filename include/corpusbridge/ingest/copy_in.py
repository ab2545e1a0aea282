"""Parser-worker side: parse files and COPY their items into the session's chunk table (`statements.CHUNK_TABLE`).

The chunk table is temporary, per connection, and emptied at every commit: a chunk is copied in and merged in
one transaction (`corpusbridge.ingest.chunk`), so a worker that dies mid-chunk leaves nothing behind and its
files, not yet in the ledger, are read again by the next run.
"""

from __future__ import annotations

import hashlib
import io
import json
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from corpusbridge.ingest import statements
from corpusbridge.ingest.parse import DEFAULT_RECORD_CAP, FileParse, parse_file
from corpusbridge.ingest.reader import open_listed
from corpusbridge.ingest.records import Quarantined, Record, json_bytes


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
    seen_before: bool  # in the ledger already: what it said before is replaced
    records_seen: int
    records_quarantined: int
    bytes_read: int


def prepare_session(conn: psycopg.Connection) -> None:
    """Create a fresh connection's chunk table (temp_buffers can only be set before its first temporary table)."""
    with conn.transaction():
        conn.execute(statements.SET_TEMP_BUFFERS)
        conn.execute(statements.CREATE_CHUNK_TABLE)


def copy_chunk(cur: psycopg.Cursor, tasks: list[FileTask], cap: int = DEFAULT_RECORD_CAP) -> list[FileResult]:
    """COPY the items of every file in the chunk through one COPY (a round trip per file would dominate)."""
    with _chunk_copy(cur) as copy:
        return [_copy_file(copy, task, cap) for task in tasks]


@contextmanager
def _chunk_copy(cur: psycopg.Cursor) -> Iterator[psycopg.Copy]:
    with cur.copy(statements.COPY_CHUNK) as copy:
        copy.set_types(statements.COPY_TYPES)
        yield copy


def _copy_file(copy: psycopg.Copy, task: FileTask, cap: int) -> FileResult:
    if task.known_sha256 is not None:
        digest = _listed_sha256(task)
        if digest == task.known_sha256:  # touched, not changed: nothing to parse
            return FileResult(
                task.file_no, task.path, task.size, task.mtime_ns, digest, "", True, True, 0, 0, task.size
            )  # fmt: skip
    info = FileParse()
    counts = [0, 0]
    _write_items(copy, task, parse_file(Path(task.path), info, cap), counts)
    return FileResult(
        task.file_no, task.path, task.size, task.mtime_ns, info.sha256, info.format, False,
        task.known_sha256 is not None, counts[0], counts[1], info.bytes_read,
    )  # fmt: skip


def _listed_sha256(task: FileTask) -> str:
    """The file's sha256, read without following a symlink or blocking on a FIFO swapped in since the chunk's check
    (FileRefused then: the chunk records the file with the reason)."""
    fd, _ = open_listed(task.path, task.size, task.mtime_ns)
    with io.FileIO(fd, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_items(copy: psycopg.Copy, task: FileTask, items: Iterator[Record | Quarantined], counts: list[int]) -> None:
    """COPY every item; counts = [records seen, records quarantined]."""
    for ordinal, item in enumerate(items):
        counts[0] += 1
        if isinstance(item, Record):
            row = record_row(task, ordinal, item)
            if not isinstance(row, Quarantined):
                copy.write_row(row)
                continue
            item = row
        counts[1] += 1
        copy.write_row(_quarantine_row(task, ordinal, item))


def record_row(task: FileTask, ordinal: int, record: Record) -> tuple | Quarantined:
    """The chunk-table row of a record (in `statements.COPY_COLUMNS` order), or why its text cannot be stored."""
    try:
        raw = record.raw_json or json_bytes(record.raw).decode("utf-8")
        authors = json_bytes(record.authors).decode("utf-8")
        texts = (record.title, record.abstract, record.full_text, record.venue, record.language, raw, authors)
        for text in texts:
            if text is not None:
                if not text.isascii():
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


def one_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}"[:500] + where
