"""The run contract against the embedded PostgreSQL: lock, run row, failure recording, progress lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import psycopg
import pytest

from corpusbridge.runs import (
    Progress,
    ProgressMeter,
    RunSummary,
    Stage,
    StageBusy,
    recorded_run,
    stage_lock,
    start_run,
)

pytestmark = pytest.mark.integration


@dataclass
class _IndexLike(RunSummary):
    columns: ClassVar[tuple[str, ...]] = ("docs_in", "docs_indexed")
    docs_in: int = 0
    docs_indexed: int = 0


def test_second_holder_of_a_stage_lock_is_refused_with_the_stage_named(db, db_uri) -> None:
    with stage_lock(db, Stage.EXPORT), psycopg.connect(db_uri) as other:
        with pytest.raises(StageBusy, match="another export run"), stage_lock(other, Stage.EXPORT):
            pass
        with stage_lock(other, Stage.LOAD):  # another stage's lock is independent
            pass
    with stage_lock(db, Stage.EXPORT):  # released on exit
        pass


def test_a_shared_reader_excludes_the_writer_but_not_other_readers(db, db_uri) -> None:
    with stage_lock(db, Stage.INGEST, shared=True), psycopg.connect(db_uri) as other:
        with stage_lock(other, Stage.INGEST, shared=True):
            pass
        with pytest.raises(StageBusy), stage_lock(other, Stage.INGEST):
            pass


def test_a_run_is_recorded_with_its_counts_and_status(db) -> None:
    summary = _IndexLike(run_id=start_run(db, Stage.INDEX, {"backend": "postgres", "mode": "incremental",
                                                            "from_seq": 0, "to_seq": 5}))  # fmt: skip
    with recorded_run(db, Stage.INDEX, summary):
        summary.docs_in = summary.docs_indexed = 5
    row = db.execute(
        "SELECT status, docs_in, docs_indexed, finished_at IS NOT NULL, code_version FROM index_runs WHERE run_id = %s",
        (summary.run_id,),
    ).fetchone()
    assert row[:4] == ("succeeded", 5, 5, True) and row[4]
    stage_row = db.execute("SELECT stage, status, counts->>'docs_in' FROM stage_runs").fetchone()
    assert stage_row == ("index", "succeeded", "5")


def test_a_failed_run_keeps_its_error_and_a_stale_running_row_is_closed(db) -> None:
    stale = start_run(db, Stage.EXPORT)
    summary = RunSummary(run_id=start_run(db, Stage.EXPORT))
    with pytest.raises(ValueError), recorded_run(db, Stage.EXPORT, summary):
        raise ValueError("disk full")
    rows = dict(db.execute("SELECT run_id, status || ':' || coalesce(error, '') FROM export_runs").fetchall())
    assert rows == {stale: "failed:interrupted", summary.run_id: "failed:ValueError: disk full"}


def test_progress_reads_as_a_person_would_write_it() -> None:
    line = str(Progress(Stage.INGEST, 50, 200, 10.0, unit="files", extras=(("records", 1000.0),)))
    assert line == "ingest: 50/200 files (25%), 5.0 files/s, 1000 records (100.0 records/s)"
    seen: list[Progress] = []
    meter = ProgressMeter(Stage.EXPORT, seen.append, total=3, every_seconds=0)
    meter.advance(2)
    assert [p.done for p in seen] == [2] and meter.report().done == 2


def test_a_run_started_inside_an_open_transaction_is_still_logged_when_it_fails(db) -> None:
    db.execute("SELECT 1")  # the caller read something first: a transaction is open
    summary = RunSummary(run_id=start_run(db, Stage.LOAD))
    db.rollback()  # what a failing stage does before recording the failure
    with pytest.raises(RuntimeError), recorded_run(db, Stage.LOAD, summary):
        raise RuntimeError("boom")
    assert db.execute("SELECT status FROM load_runs WHERE run_id = %s", (summary.run_id,)).fetchone() == ("failed",)
