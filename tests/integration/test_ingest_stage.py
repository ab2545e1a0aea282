"""Ingestion runs end to end against the embedded PostgreSQL: incremental, idempotent, crash-safe, reconciled."""

from __future__ import annotations

import json
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
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "include"), os.environ.get("PYTHONPATH", "")])}
    victim = _cli("ingest", str(corpus), "--db", db_uri, "--workers", "2", env=env)
    with psycopg.connect(db_uri, autocommit=True) as watch:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and victim.poll() is None:
            if _count(watch, "source_files") > 0:
                break
            time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)  # the loader and its parser workers die together, as in a crash
    victim.wait()
    _kill_orphans(db_uri)
    with psycopg.connect(db_uri, autocommit=True) as watch:
        partial = _count(watch, "raw_documents")
    rerun = _cli("ingest", str(corpus), "--db", db_uri, "--json", env=env)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["reconciled"] and summary["files_unchanged"] + summary["files_new"] == summary["files_seen"]
    with psycopg.connect(db_uri) as conn:
        killed_then_rerun = conn.execute(TABLE_SNAPSHOT).fetchall()
        statuses = [r[0] for r in conn.execute("SELECT status FROM ingest_runs ORDER BY run_id")]
    assert statuses == ["failed", "succeeded"]
    clean_corpus_db = _fresh_database(pg_server_uri)
    with psycopg.connect(clean_corpus_db) as conn:
        from corpusbridge.db import apply_migrations

        apply_migrations(conn)
        run_ingest(conn, corpus)
        assert conn.execute(TABLE_SNAPSHOT).fetchall() == killed_then_rerun
    assert partial < len(killed_then_rerun), "the kill should land mid-run"


def _count(conn: psycopg.Connection, table: str) -> int:
    from psycopg import sql

    try:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    except psycopg.errors.UndefinedTable:  # the run has not migrated the schema yet
        return 0
    return int(row[0]) if row else 0


def _kill_orphans(db_uri: str) -> None:
    """Parser workers of the killed run may still hold connections; end them as a crash would."""
    from psycopg.conninfo import conninfo_to_dict

    dbname = conninfo_to_dict(db_uri)["dbname"]
    with psycopg.connect(db_uri, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )


def _fresh_database(server_uri: str) -> str:
    import uuid

    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"clean_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_uri, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_uri) | {"dbname": name}
    return make_conninfo(**params)


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
