"""Ingestion runs end to end against the embedded PostgreSQL: incremental, idempotent, crash-safe, reconciled."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from gen_corpus import generate
from process_support import children, fresh_database, other_sessions, running, wait_until

from corpusbridge.ingest.stage import IngestOptions, run_ingest

pytestmark = pytest.mark.integration

CORPORA = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"
REPO = Path(__file__).resolve().parents[2]
TABLE_SNAPSHOT = "SELECT doc_id, content_hash, source_file, title FROM raw_documents ORDER BY doc_id"


def _samples(tmp_path: Path) -> Path:
    target = tmp_path / "samples"
    shutil.copytree(CORPORA, target, ignore=shutil.ignore_patterns("*.md"))
    return target


def test_real_samples_load_and_reconcile(db, tmp_path) -> None:
    summary = run_ingest(db, _samples(tmp_path))
    assert summary.files_seen == summary.files_new == 14
    # 41 records; the OpenAlex work W2741809807 appears in two files: one document, two provenance rows.
    assert (summary.records_seen, summary.records_loaded, summary.records_duplicate) == (41, 40, 1)
    assert summary.records_quarantined == 0 and summary.reconciled
    provenance = db.execute("SELECT count(*) FROM document_sources WHERE doc_id = 'doi:10.7717/peerj.4375'").fetchone()
    assert provenance == (2,)
    stored = db.execute("SELECT records_seen, status FROM ingest_runs WHERE run_id = %s", (summary.run_id,)).fetchone()
    assert stored == (41, "succeeded")


def test_rerun_reads_nothing_and_adds_zero_rows(db, tmp_path) -> None:
    corpus = _samples(tmp_path)
    run_ingest(db, corpus)
    before = db.execute(TABLE_SNAPSHOT).fetchall()
    again = run_ingest(db, corpus)
    assert (again.files_unchanged, again.files_new, again.files_changed, again.records_seen) == (14, 0, 0, 0)
    assert db.execute(TABLE_SNAPSHOT).fetchall() == before


def test_a_file_gone_from_the_source_is_reported_and_its_records_stay(db, tmp_path, caplog) -> None:
    corpus = _samples(tmp_path)
    (tmp_path / "samples-other").mkdir()  # a sibling whose name starts like the folder's: not under it
    assert run_ingest(db, corpus).files_vanished == 0
    before = db.execute(TABLE_SNAPSHOT).fetchall()
    next(corpus.rglob("*.nxml")).unlink()
    with caplog.at_level(logging.WARNING):
        again = run_ingest(db, corpus)
    assert (again.files_vanished, again.files_seen, again.records_seen) == (1, 13, 0)
    assert "1 files ingested before" in caplog.text and db.execute(TABLE_SNAPSHOT).fetchall() == before
    assert run_ingest(db, tmp_path / "samples-other").files_vanished == 0
    assert run_ingest(db, corpus, IngestOptions(limit_files=3)).files_vanished == 0  # a partial walk cannot tell


def test_touched_but_identical_file_is_unchanged(db, tmp_path) -> None:
    corpus = _samples(tmp_path)
    run_ingest(db, corpus)
    target = next(corpus.rglob("*.nxml"))
    os.utime(target, ns=(time.time_ns(), time.time_ns()))
    again = run_ingest(db, corpus)
    assert (again.files_changed, again.files_unchanged, again.records_seen) == (0, 14, 0)


def test_changed_file_updates_its_documents_in_place(db, tmp_path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    path = corpus / "a.jsonl"
    path.write_text('{"id": "1", "title": "old"}\n{"id": "2", "title": "kept"}\n{"id": "3", "title": "bad": }\n')
    run_ingest(db, corpus)
    seq_before = dict(db.execute("SELECT doc_id, change_seq FROM raw_documents").fetchall())
    path.write_text('{"id": "1", "title": "new"}\n{"id": "2", "title": "kept"}\n')
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    summary = run_ingest(db, corpus)
    assert (summary.files_changed, summary.records_loaded, summary.records_quarantined) == (1, 2, 0)
    rows = dict(db.execute("SELECT doc_id, title FROM raw_documents").fetchall())
    assert rows == {"id:1": "new", "id:2": "kept"}
    seq_after = dict(db.execute("SELECT doc_id, change_seq FROM raw_documents").fetchall())
    assert seq_after["id:1"] > seq_before["id:1"] and seq_after["id:2"] == seq_before["id:2"]
    assert db.execute("SELECT count(*) FROM quarantine").fetchone() == (0,), "the fixed line left the quarantine"


def test_parallel_and_serial_runs_give_identical_rows(db, db_uri, tmp_path, pg_server_uri) -> None:
    expected = generate(tmp_path / "gen", 600, bad_fraction=0.02, seed=3)
    serial = run_ingest(db, tmp_path / "gen", IngestOptions(workers=1, chunk_files=40))
    assert serial.reconciled
    assert (serial.records_seen, serial.records_quarantined) == (expected.records, expected.quarantined)
    assert (serial.records_loaded, serial.records_duplicate) == (expected.documents, expected.duplicates)
    snapshot = db.execute(TABLE_SNAPSHOT).fetchall()
    db.execute("TRUNCATE raw_documents, document_sources, quarantine, source_files CASCADE")
    db.commit()
    parallel = run_ingest(db, tmp_path / "gen", IngestOptions(workers=2, chunk_files=7))
    assert parallel.records_loaded == serial.records_loaded and parallel.records_duplicate == serial.records_duplicate
    assert db.execute(TABLE_SNAPSHOT).fetchall() == snapshot


def test_progress_lines_show_files_records_and_megabytes_per_second(db, tmp_path, caplog) -> None:
    from corpusbridge_airflow.stages import log_progress

    caplog.set_level(logging.INFO, logger="corpusbridge_airflow.stages")
    run_ingest(db, _samples(tmp_path), progress=log_progress)
    # Only the progress logger's own lines: other loggers may be at INFO too when the whole suite runs.
    last = [r for r in caplog.records if r.name == "corpusbridge_airflow.stages"][-1].getMessage()
    assert last.startswith("ingest: 14/14 files (100%)")
    assert all(f" {unit}/s" in last for unit in ("files", "records", "MB")), last


def test_skipped_entries_are_counted_in_the_run_log(db, tmp_path) -> None:
    corpus = _samples(tmp_path)
    (corpus / ".DS_Store").write_bytes(b"\0")
    (corpus / ".git").mkdir()
    summary = run_ingest(db, corpus)
    assert summary.files_skipped == {"hidden entries": 2} and summary.as_dict()["files_skipped"] == {
        "hidden entries": 2
    }
    counts = db.execute("SELECT counts->'files_skipped' FROM stage_runs WHERE stage = 'ingest'").fetchone()
    assert counts == ({"hidden entries": 2},)


def test_limit_files_takes_a_stable_subset(db, tmp_path) -> None:
    corpus = _samples(tmp_path)
    first = run_ingest(db, corpus, IngestOptions(limit_files=5))
    assert first.files_seen == 5
    rest = run_ingest(db, corpus)
    assert (rest.files_unchanged, rest.files_new) == (5, 9)


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "corpusbridge", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def test_kill_mid_ingest_then_rerun_equals_one_clean_run(db_uri, tmp_path, pg_server_uri) -> None:
    corpus = tmp_path / "gen"
    generate(corpus, 4000, seed=11)
    victim = _cli("ingest", str(corpus), "--db", db_uri, "--workers", "2", env=_env())
    with psycopg.connect(db_uri, autocommit=True) as watch:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and victim.poll() is None:
            if _count(watch, "source_files") > 0:
                break
            time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)  # the loader and its parser workers die together, as in a crash
    victim.wait()
    wait_until(lambda: other_sessions(db_uri) == 0, "the killed run's database sessions stayed open")
    with psycopg.connect(db_uri, autocommit=True) as watch:
        partial = _count(watch, "raw_documents")
    killed_then_rerun = _rerun_and_snapshot(db_uri, corpus)
    _assert_equals_one_clean_run(pg_server_uri, corpus, killed_then_rerun)
    assert partial < len(killed_then_rerun), "the kill should land mid-run"


def test_workers_die_with_a_killed_ingest_and_the_next_run_proceeds(db_uri, tmp_path, pg_server_uri) -> None:
    """kill -9 of the main process alone: its workers must not go on, nor keep its sessions (and the lock) open."""
    corpus = tmp_path / "gen"
    generate(corpus, 4000, seed=13)
    victim = _cli("ingest", str(corpus), "--db", db_uri, "--workers", "2", env=_env())
    workers = _workers_once_merging(victim, db_uri)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    wait_until(lambda: not any(running(pid) for pid in workers), f"workers {workers} outlived the killed ingest")
    wait_until(lambda: other_sessions(db_uri) == 0, "the killed run's database sessions stayed open")
    killed_then_rerun = _rerun_and_snapshot(db_uri, corpus)  # no IngestAlreadyRunning
    _assert_equals_one_clean_run(pg_server_uri, corpus, killed_then_rerun)


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "include"), os.environ.get("PYTHONPATH", "")])}


def _workers_once_merging(victim: subprocess.Popen, db_uri: str) -> list[int]:
    """The ingest's child processes, once its workers have merged a chunk (so the kill lands mid-run)."""
    deadline = time.monotonic() + 120
    with psycopg.connect(db_uri, autocommit=True) as watch:
        while time.monotonic() < deadline and victim.poll() is None:
            found = children(victim.pid)
            if len(found) >= 2 and _count(watch, "source_files") > 0:
                return found
            time.sleep(0.02)
    raise AssertionError(f"the ingest ended (rc {victim.poll()}) before its workers were seen merging")


def _rerun_and_snapshot(db_uri: str, corpus: Path) -> list[tuple]:
    rerun = _cli("ingest", str(corpus), "--db", db_uri, "--json", env=_env())
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["reconciled"] and summary["files_unchanged"] + summary["files_new"] == summary["files_seen"]
    with psycopg.connect(db_uri) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM ingest_runs ORDER BY run_id")]
        assert statuses == ["failed", "succeeded"]
        return conn.execute(TABLE_SNAPSHOT).fetchall()


def _assert_equals_one_clean_run(server_uri: str, corpus: Path, snapshot: list[tuple]) -> None:
    from corpusbridge.db import apply_migrations

    with psycopg.connect(fresh_database(server_uri)) as conn:
        apply_migrations(conn)
        run_ingest(conn, corpus)
        assert conn.execute(TABLE_SNAPSHOT).fetchall() == snapshot


def _count(conn: psycopg.Connection, table: str) -> int:
    from psycopg import sql

    try:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    except psycopg.errors.UndefinedTable:  # the run has not migrated the schema yet
        return 0
    return int(row[0]) if row else 0


def test_cli_ingest_json_keys_and_quarantine_listing(db_uri, tmp_path) -> None:
    corpus = _samples(tmp_path)
    (corpus / "junk.txt").write_text("not a record")
    env = os.environ | {"PYTHONPATH": str(REPO / "include")}
    out = subprocess.run(
        [sys.executable, "-m", "corpusbridge", "ingest", str(corpus), "--db", db_uri, "--json"],
        env=env, capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    summary = json.loads(out)
    for key in ("files_seen", "files_new", "files_changed", "files_unchanged", "records_seen", "records_loaded",
                "records_duplicate", "records_quarantined", "seconds"):  # fmt: skip
        assert key in summary
    assert summary["records_quarantined"] == 1
    listing = subprocess.run(
        [sys.executable, "-m", "corpusbridge", "quarantine", "--db", db_uri, "--json"],
        env=env, capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    entries = json.loads(listing)["entries"]
    assert entries[0]["error_class"] == "UnknownFormat" and entries[0]["source_file"].endswith("junk.txt")
    mistyped = subprocess.run(
        [sys.executable, "-m", "corpusbridge", "quarantine", "--error-class", "UnknwonFormat", "--db", db_uri],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert mistyped.returncode == 1 and "classes: UnknownFormat (1)" in mistyped.stderr, mistyped.stderr


def test_servers_before_postgresql_18_count_duplicates_the_same(db, tmp_path, monkeypatch) -> None:
    """Without `RETURNING old`, merges count under an advisory lock; the counts and rows must not change."""
    from corpusbridge import processes
    from corpusbridge.ingest import merge

    expected = generate(tmp_path / "gen", 400, bad_fraction=0.02, seed=5)
    monkeypatch.setattr(merge, "RETURNING_OLD_SINCE", 10**9)
    monkeypatch.setattr(processes, "START_METHOD", "fork")  # so that the workers inherit the patched threshold
    summary = run_ingest(db, tmp_path / "gen", IngestOptions(workers=2, chunk_files=5))
    assert summary.reconciled
    assert (summary.records_loaded, summary.records_duplicate) == (expected.documents, expected.duplicates)
