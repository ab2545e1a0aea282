"""Faults in the workstation stages (issue 13; docs/faults.md): `kill -9` of the export mid-write and of the index
mid-run, then a rerun equal to one clean run; the export's disk filling up, then a rerun with space.

Each killed stage runs in a process of its own (a short driver below) that says when it is in the middle of its work
and waits there; the test kills it with SIGKILL, checks what it left behind, reruns the real stage in-process and
compares with one clean run of the same documents in a fresh database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from faults_support import fill, sanitized_corpus, small_disk
from process_support import fresh_database, other_sessions, wait_until

from corpusbridge.db import apply_migrations
from corpusbridge.export.selection import Selection
from corpusbridge.export.stage import run_export
from corpusbridge.index.stage import run_index

pytestmark = [pytest.mark.integration, pytest.mark.faults]

INCLUDE = str(Path(__file__).resolve().parents[2] / "include")
SELECTION = Selection(dictionary_version="faults-v1")

# The export in a process of its own. Its only change: at its third row group (shard 1 half written, its temp file
# open), it says so and waits to be killed.
EXPORTER = """
import sys, time
from pathlib import Path
import corpusbridge.export.shards as shards
from corpusbridge.db import connect
from corpusbridge.export.selection import Selection
from corpusbridge.export.stage import run_export

flush, calls = shards.ShardWriter._flush, []
def flush_then_hang(self):
    flush(self)
    calls.append(1)
    if len(calls) == 3:
        self._open.handle.flush()  # its bytes so far on disk, as a crash could leave them
        print(self._open.tmp, flush=True)
        time.sleep(600)
shards.ShardWriter._flush = flush_then_hang
shards.ROW_GROUP_ROWS = 10
conn = connect(sys.argv[1])
run_export(conn, Selection(dictionary_version="faults-v1"), Path(sys.argv[2]), shard_rows=20)
"""

# The postgres index in a process of its own: after its first committed page it says so and waits to be killed.
INDEXER = """
import sys, time
import corpusbridge.index.fulltext as fulltext
from corpusbridge.db import connect

class HangingMeter(fulltext.ProgressMeter):
    def advance(self, n):
        super().advance(n)
        print("page committed", flush=True)
        time.sleep(600)
fulltext.ProgressMeter = HangingMeter
conn = connect(sys.argv[1])
fulltext.index_postgres(conn, batch_size=10)
"""


def _start(driver: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", driver, *args], stdout=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONPATH": INCLUDE})  # fmt: skip


def _kill(proc: subprocess.Popen[str], db_uri: str) -> None:
    """SIGKILL, then wait until its database session is gone (the test's own `db` session is the one left)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_until(lambda: other_sessions(db_uri) <= 1, "the killed stage's database session ended")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _batches(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT b.batch_id, b.shard_count, b.rows, b.status, count(d.doc_id) FROM export_batches b "
        "LEFT JOIN export_batch_documents d USING (batch_id) GROUP BY 1 ORDER BY 1"
    ).fetchall()


def test_export_killed_mid_write_leaves_no_batch_and_the_rerun_equals_one_clean_run(
    db, db_uri: str, pg_server_uri: str, tmp_path: Path
) -> None:
    sanitized_corpus(db, 50)
    out = tmp_path / "exports"
    exporter = _start(EXPORTER, db_uri, str(out))
    try:
        assert exporter.stdout is not None
        half_written = Path(exporter.stdout.readline().strip())
        assert half_written.is_file() and half_written.stat().st_size > 0  # a shard was being written
    finally:
        _kill(exporter, db_uri)
    assert _batches(db) == [] and db.execute("SELECT count(*) FROM export_batch_documents").fetchone()[0] == 0
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []  # nothing published
    assert db.execute("SELECT status FROM export_runs").fetchall() == [("running",)]
    db.commit()

    rerun = run_export(db, SELECTION, out, shard_rows=20)
    assert rerun.status == "succeeded" and (rerun.shards, rerun.docs_exported) == (3, 50)
    assert sorted(p.name for p in out.iterdir()) == [rerun.batch_id]  # the dead run's temp folder is gone
    batch = out / str(rerun.batch_id)

    with psycopg.connect(fresh_database(pg_server_uri)) as clean:
        apply_migrations(clean)
        sanitized_corpus(clean, 50)
        one = run_export(clean, SELECTION, tmp_path / "clean", shard_rows=20)
        assert one.batch_id == rerun.batch_id and _batches(clean) == _batches(db)
    assert _files(batch) == _files(tmp_path / "clean" / str(one.batch_id))


INDEX_SNAPSHOT = "SELECT doc_id, clean_seq, search_vector::text FROM clean_documents ORDER BY doc_id"


def test_index_killed_mid_run_then_rerun_equals_one_clean_run(db, db_uri: str, pg_server_uri: str) -> None:
    sanitized_corpus(db, 45, sentences=1)
    indexer = _start(INDEXER, db_uri)
    try:
        assert indexer.stdout is not None and indexer.stdout.readline().strip() == "page committed"
    finally:
        _kill(indexer, db_uri)
    half = db.execute("SELECT count(*) FILTER (WHERE search_vector IS NOT NULL), count(*) FROM clean_documents")
    indexed, total = half.fetchone()
    db.commit()
    assert 0 < indexed < total  # killed with the first page committed and the rest not

    rerun = run_index(db)
    assert rerun.status == "succeeded" and rerun.docs_indexed == total
    assert run_index(db).docs_indexed == 0  # and the watermark moved: nothing twice
    snapshot = db.execute(INDEX_SNAPSHOT).fetchall()
    db.commit()

    with psycopg.connect(fresh_database(pg_server_uri)) as clean:
        apply_migrations(clean)
        sanitized_corpus(clean, 45, sentences=1)
        assert run_index(clean).docs_indexed == total
        assert clean.execute(INDEX_SNAPSHOT).fetchall() == snapshot


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "small-disk") as mount:
        yield mount


def test_a_full_disk_during_export_is_a_clear_error_with_nothing_published_then_a_rerun_completes(
    db, disk: Path
) -> None:
    sanitized_corpus(db, 800)
    filler = fill(disk, leave=16 * 1024)
    with pytest.raises(OSError, match="no space left") as failed:
        run_export(db, SELECTION, disk / "exports", shard_rows=200)
    db.rollback()
    assert str(disk / "exports") in str(failed.value) and "free space" in str(failed.value)
    assert list((disk / "exports").iterdir()) == []  # no half shard, no temp folder left taking space
    assert _batches(db) == []
    run = db.execute("SELECT status, error FROM export_runs").fetchone()
    db.commit()
    assert run[0] == "failed" and "no space left" in run[1]

    filler.unlink()  # space again: the same batch, written whole
    again = run_export(db, SELECTION, disk / "exports", shard_rows=200)
    assert again.status == "succeeded" and again.docs_exported == 800
    assert _batches(db) == [(again.batch_id, again.shards, 800, "exported", 800)]
