"""The sanitize stage against a real PostgreSQL: counts, rejects, duplicates, incrementality, crash + rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psycopg
import pytest
from gen_corpus import generate
from process_support import children, fresh_database, other_sessions, running, wait_until
from sanitize_support import put_raw, raw_row, table_writes

from corpusbridge.db import apply_migrations
from corpusbridge.ingest.stage import IngestOptions, run_ingest
from corpusbridge.sanitize.rejects import latest_rejects
from corpusbridge.sanitize.stage import SanitizeBusyError, run_sanitize

pytestmark = pytest.mark.integration

TEXT = "Inhaled budesonide with formoterol as needed controlled mild asthma better than terbutaline over a year."
DOC_TABLES = ("clean_documents", "sanitize_rejects", "clean_document_removals")


def _corpus() -> list[dict]:
    return [
        raw_row(
            "a",
            title="Mild <i>asthma</i>.",
            abstract=f"<p>{TEXT}</p>",
            year=2018,
            authors=[{"name": "Paul O'Byrne", "orcid": "0000-0002-1825-0097"}],
        ),
        raw_row("b", title="<b></b>", abstract=" &#x200b; "),
        raw_row("c", title="Mild asthma", abstract=TEXT, year=3015),
        raw_row("d", title="Unrelated", abstract="Soil microbes in alpine lakes.", language="eng"),
        raw_row("e", title="Mild asthma", abstract=TEXT),
    ]


def _clean(db: psycopg.Connection) -> dict[str, tuple]:
    rows = db.execute("SELECT doc_id, title, canonical_id, year, notes FROM clean_documents ORDER BY doc_id")
    return {r[0]: r[1:] for r in rows}


def test_counts_reconcile_and_rejects_keep_their_reason(db: psycopg.Connection) -> None:
    put_raw(db, *_corpus())
    summary = run_sanitize(db, batch_size=2)
    assert (summary.docs_in, summary.docs_clean, summary.docs_rejected) == (5, 4, 1)
    assert summary.reject_reasons == {"no_text": 1}
    assert [(r.doc_id, r.reason, r.run_id) for r in latest_rejects(db, 10)] == [("b", "no_text", summary.run_id)]
    run = db.execute("SELECT status, docs_in, docs_clean, docs_rejected FROM sanitize_runs").fetchone()
    assert run == ("succeeded", 5, 4, 1)
    clean = _clean(db)
    assert clean["a"][0] == "Mild asthma" and clean["c"][2:] == (None, ["year_out_of_range:3015"])


def test_exact_duplicates_link_to_the_smallest_doc_id(db: psycopg.Connection) -> None:
    put_raw(db, *_corpus())
    summary = run_sanitize(db, batch_size=2)
    clean = _clean(db)
    assert (clean["a"][1], clean["c"][1], clean["e"][1], clean["d"][1]) == ("a", "a", "a", "d")
    assert summary.duplicates_linked == 2
    put_raw(db, raw_row("a", title="Mild asthma", abstract=TEXT + " Revised."))
    run_sanitize(db)
    clean = _clean(db)
    assert (clean["a"][1], clean["c"][1], clean["e"][1]) == ("a", "c", "c"), "the group re-elects its canonical"


def test_rerun_without_changes_writes_nothing(db: psycopg.Connection) -> None:
    put_raw(db, *_corpus())
    run_sanitize(db)
    before = table_writes(db, *DOC_TABLES, "sanitize_staging")
    assert before >= 5, "the statistics must see the first run's writes, or this test proves nothing"
    summary = run_sanitize(db)
    assert (summary.docs_in, summary.rows_written) == (0, 0)
    assert table_writes(db, *DOC_TABLES, "sanitize_staging") == before


def test_a_rebuild_reads_every_document_and_rewrites_only_those_cleaned_differently(
    db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the cleaning rules change, `sanitize --rebuild` brings the existing documents up to date; a document
    the new rules clean the same keeps its clean_seq, so it is not indexed or exported again."""
    from corpusbridge.sanitize import records

    put_raw(db, *_corpus())
    run_sanitize(db)
    seq_before = dict(db.execute("SELECT doc_id, clean_seq FROM clean_documents").fetchall())
    assert (run_sanitize(db, rebuild=True).docs_in, run_sanitize(db).docs_in) == (5, 0)
    unchanged = dict(db.execute("SELECT doc_id, clean_seq FROM clean_documents").fetchall())
    assert unchanged == seq_before, "cleaned the same: nothing written"

    original = records.clean_title
    monkeypatch.setattr(records, "clean_title", lambda text: (t := original(text)) and t.replace("Unrelated", "Other"))
    summary = run_sanitize(db, rebuild=True, workers=1)  # in this process, where the new rule is
    seq_after = dict(db.execute("SELECT doc_id, clean_seq FROM clean_documents").fetchall())
    assert (summary.docs_in, [d for d in seq_after if seq_after[d] != seq_before[d]]) == (5, ["d"])
    assert _clean(db)["d"][0] == "Other"


def test_only_changed_documents_are_read_and_unchanged_output_is_not_rewritten(db: psycopg.Connection) -> None:
    put_raw(db, *_corpus())
    run_sanitize(db)
    seq_before = dict(db.execute("SELECT doc_id, clean_seq FROM clean_documents").fetchall())
    put_raw(
        db,
        raw_row(
            "d", title="Unrelated", abstract="Soil microbes in alpine lakes.", language="eng", raw={"cited_by_count": 5}
        ),
    )
    summary = run_sanitize(db)
    assert (summary.docs_in, summary.rows_written) == (1, 0), "a raw change that cleans the same is no write"
    put_raw(db, raw_row("d", title="Unrelated <i>again</i>", abstract="Soil microbes.", language="eng"))
    summary = run_sanitize(db)
    seq_after = dict(db.execute("SELECT doc_id, clean_seq FROM clean_documents").fetchall())
    assert summary.docs_in == 1
    assert [d for d in seq_after if seq_after[d] != seq_before[d]] == ["d"]
    assert _clean(db)["d"][0] == "Unrelated again"


def test_clean_to_rejected_and_back(db: psycopg.Connection) -> None:
    put_raw(db, *_corpus())
    run_sanitize(db)
    put_raw(db, raw_row("d", title=" ", abstract="<p/>"), raw_row("b", title="Now a title"))
    summary = run_sanitize(db)
    assert (summary.docs_clean, summary.docs_rejected) == (1, 1)
    assert "d" not in _clean(db) and "b" in _clean(db)
    assert db.execute("SELECT doc_id FROM sanitize_rejects").fetchall() == [("d",)]
    assert db.execute("SELECT doc_id FROM clean_document_removals").fetchall() == [("d",)]


def test_crash_then_rerun_ends_like_one_clean_run(db: psycopg.Connection) -> None:
    put_raw(db, *_corpus())

    def crash_after_first_batch(progress) -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run_sanitize(db, batch_size=2, progress=crash_after_first_batch)
    assert db.execute("SELECT status, docs_in, error FROM sanitize_runs").fetchone() == (
        "failed",
        2,
        "RuntimeError: power cut",
    )
    summary = run_sanitize(db, batch_size=2)
    assert (summary.from_seq, summary.docs_in, summary.docs_clean) == (0, 5, 4)
    assert sorted(_clean(db)) == ["a", "c", "d", "e"]
    assert db.execute("SELECT count(*) FROM sanitize_staging").fetchone()[0] == 0


def test_a_second_concurrent_run_is_refused(db: psycopg.Connection, db_uri: str) -> None:
    from corpusbridge.runs import Stage, stage_lock

    with (
        psycopg.connect(db_uri) as other,
        stage_lock(other, Stage.SANITIZE),
        pytest.raises(SanitizeBusyError, match="in progress"),
    ):
        run_sanitize(db)


def test_sanitize_waits_for_a_running_ingestion(db: psycopg.Connection, db_uri: str) -> None:
    from corpusbridge.runs import Stage, stage_lock

    with (
        psycopg.connect(db_uri) as ingest,
        stage_lock(ingest, Stage.INGEST),
        pytest.raises(SanitizeBusyError, match="ingestion run is writing"),
    ):
        run_sanitize(db)
    assert run_sanitize(db).status == "succeeded"


CLEAN_SNAPSHOT = "SELECT doc_id, clean_hash, canonical_id FROM clean_documents ORDER BY doc_id"


@pytest.mark.timeout(600)
def test_workers_die_with_a_killed_sanitize_and_the_next_run_proceeds(db, db_uri, tmp_path, pg_server_uri) -> None:
    """kill -9 of the main process alone: its cleaning workers must not keep its session (and the lock) open."""
    generate(tmp_path / "gen", 8000, seed=17)
    run_ingest(db, tmp_path / "gen", IngestOptions(workers=1))
    command = [
        sys.executable,
        "-m",
        "corpusbridge",
        "sanitize",
        "--db",
        db_uri,
        "--workers",
        "2",
        "--batch-size",
        "500",
    ]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[int] = []

    def cleaning() -> bool:
        workers[:] = children(victim.pid)
        row = db.execute("SELECT coalesce(max(docs_in), 0) FROM sanitize_runs").fetchone()
        db.rollback()
        return victim.poll() is not None or (len(workers) >= 2 and row[0] > 0)

    wait_until(cleaning, "the sanitize run never reached its first batch", seconds=120)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    wait_until(lambda: not any(running(p) for p in workers), f"workers {workers} outlived the killed sanitize")
    wait_until(lambda: other_sessions(db_uri) == 1, "the killed run's database session stayed open")  # 1: `db`
    rerun = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["reconciled"]
    statuses = [r[0] for r in db.execute("SELECT status FROM sanitize_runs ORDER BY run_id")]
    assert statuses == ["failed", "succeeded"], "the kill should land mid-run"
    killed_then_rerun = db.execute(CLEAN_SNAPSHOT).fetchall()
    db.rollback()
    with psycopg.connect(fresh_database(pg_server_uri)) as clean:
        apply_migrations(clean)
        run_ingest(clean, tmp_path / "gen", IngestOptions(workers=1))
        run_sanitize(clean, workers=1)
        assert clean.execute(CLEAN_SNAPSHOT).fetchall() == killed_then_rerun
