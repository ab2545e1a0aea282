"""A worker's COPY of one chunk: a file seen before is compared by hash, read like any other file (never by a link)."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from corpusbridge.hashing import file_sha256
from corpusbridge.ingest.copy_in import FileTask, copy_chunk, prepare_session
from corpusbridge.ingest.reader import FileRefused

pytestmark = pytest.mark.integration


def _task(path: Path, known_sha256: str) -> FileTask:
    st = path.stat()
    return FileTask(1, str(path), st.st_size, st.st_mtime_ns, known_sha256)


def test_a_touched_identical_file_is_recognised_by_its_hash(db: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": "a", "title": "A"}\n')
    prepare_session(db)
    with db.transaction(), db.cursor() as cur:
        [result] = copy_chunk(cur, [_task(path, file_sha256(path))])
    assert result.unchanged and result.records_seen == 0


@pytest.mark.timeout(60)
def test_a_seen_file_swapped_for_a_fifo_is_refused_without_blocking(db: psycopg.Connection, tmp_path: Path) -> None:
    """Its hash is read like its records: by a non-blocking, non-following open (a plain open would wait forever)."""
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": "a"}\n')
    task = _task(path, "0" * 64)
    path.unlink()
    os.mkfifo(path)
    os.utime(path, ns=(task.mtime_ns, task.mtime_ns))
    prepare_session(db)
    with pytest.raises(FileRefused, match="FIFO"), db.transaction(), db.cursor() as cur:
        copy_chunk(cur, [task])
