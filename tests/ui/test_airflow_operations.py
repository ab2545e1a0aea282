"""What an operator does to corpus_compute under a real scheduler and triggerer: backfill two dates, clear a
deferred SLURM task, mark one failed while its trigger runs (on_kill cancels the job) and one before the triggerer
picked its trigger up (the run's teardown cancels it).

The Airflow components run for real on 127.0.0.1 (api-server, scheduler, dag-processor, triggerer, LocalExecutor);
every action goes through the REST API, as the UI's buttons send it. The corpus is the bundled samples, ingested and
cleaned with the `corpusbridge` command before the stack starts; SLURM is the loopback sandbox over real SSH.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow_stack import AirflowStack, create_database, postgres_connection, sqlalchemy_url

pytestmark = [pytest.mark.ui, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO / "tests" / "fixtures" / "corpora"
CORPUSBRIDGE = Path(sys.executable).with_name("corpusbridge")
TERMS = "concept_id\tterm\nC1\tasthma\nC2\tbudesonide\nC3\tprotein\nC4\tcells\nC5\tpatients\nC6\tgene\n"
DATES = ("2026-11-01", "2026-11-02")
LIVE_JOB_STATES = ("PENDING", "RUNNING", "COMPLETING")
# Holds a SLURM payload until the test releases it, so that the task stays deferred on a RUNNING job for as long as
# the test needs. Only inside a job: any other use of the interpreter goes straight through.
HOLDING_PYTHON = """#!/bin/sh
hold={hold}
if [ -n "$SLURM_JOB_ID" ]; then
  echo "${{SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}}" >> "$hold/started"
  while [ ! -e "$hold/release" ]; do sleep 0.5; done
fi
exec {python} "$@"
"""


@dataclass
class Deployment:
    airflow: AirflowStack
    corpus_db: str
    terms: Path
    hpc: Any | None  # the sandbox, when one could start


@pytest.fixture(scope="module")
def deployment(
    pg_server_uri: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-operations")
    corpus_db = create_database(pg_server_uri, "ops_corpus")
    corpus = home / "corpus"
    shutil.copytree(CORPORA, corpus, ignore=shutil.ignore_patterns("*.md"))
    for stage in (["ingest", str(corpus)], ["sanitize"]):
        subprocess.run([str(CORPUSBRIDGE), *stage, "--db", corpus_db, "--json"], check=True, capture_output=True)
    terms = home / "terms.tsv"
    terms.write_text(TERMS)
    extra_env = {
        "AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES": postgres_connection(corpus_db),
        "CORPUSBRIDGE_HOME": str(home / "corpusbridge"),
    }
    try:
        hpc = request.getfixturevalue("hpc_sandbox")
        extra_env["AIRFLOW_CONN_CORPUSBRIDGE_HPC"] = hpc.connection_json()
    except pytest.skip.Exception:
        hpc = None
    extra_env |= {k: v for k, v in os.environ.items() if k == "CORPUSBRIDGE_TEST_DB"}
    metadata = sqlalchemy_url(create_database(pg_server_uri, "ops_airflow"))
    airflow = AirflowStack(home / "airflow", metadata, REPO, extra_env)
    try:
        airflow.start()
        airflow.wait_for_dag("corpus_compute")
        airflow.api("PATCH", "/dags/corpus_compute", {"is_paused": False})
        yield Deployment(airflow, corpus_db, terms, hpc)
    finally:
        airflow.stop()


def _rows(corpus_db: str) -> dict[str, int]:
    with psycopg.connect(corpus_db) as conn:
        return {
            "concepts": conn.execute("SELECT count(*) FROM document_concepts").fetchone()[0],
            "docs": conn.execute("SELECT count(DISTINCT doc_id) FROM document_results").fetchone()[0],
            "distinct_mentions": conn.execute(
                "SELECT count(*) FROM (SELECT DISTINCT doc_id, concept_id, start_offset FROM document_concepts) m"
            ).fetchone()[0],
        }


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def _wait_backfill_done(airflow: AirflowStack, backfill_id: int, timeout: float = 420) -> list[dict[str, Any]]:
    """The backfill's runs once it is completed (Airflow sets completed_at a few seconds after its last run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backfill = airflow.api("GET", f"/backfills/{backfill_id}")
        if backfill.get("completed_at"):
            runs = airflow.api("GET", "/dags/corpus_compute/dagRuns?run_type=backfill&limit=100")["dag_runs"]
            return [r for r in runs if r.get("backfill_id") == backfill_id] or runs
        time.sleep(2.0)
    raise AssertionError(f"backfill {backfill_id} not completed after {timeout:.0f}s\n{airflow.log_tails()}")


def _backfill(deployment: Deployment) -> list[dict[str, Any]]:
    body = {
        "dag_id": "corpus_compute",
        "from_date": f"{DATES[0]}T00:00:00Z",
        "to_date": f"{DATES[-1]}T00:00:00Z",
        "dag_run_conf": {"backend": "local", "dictionary": str(deployment.terms), "embeddings": False},
        "max_active_runs": 1,
        "reprocess_behavior": "completed",
    }
    backfill = deployment.airflow.api("POST", "/backfills", body)
    runs = _wait_backfill_done(deployment.airflow, backfill["id"])
    return sorted(runs, key=lambda r: r["logical_date"])


def test_a_backfill_of_two_dates_loads_each_dates_documents_once(deployment: Deployment) -> None:
    """Each backfill run re-exports the documents cleaned on its date; a second backfill duplicates nothing."""
    with psycopg.connect(deployment.corpus_db) as conn:
        ids = [r[0] for r in conn.execute("SELECT doc_id FROM clean_documents ORDER BY doc_id")]
        half = len(ids) // 2
        for date, chunk in zip(DATES, (ids[:half], ids[half:]), strict=True):
            conn.execute("UPDATE clean_documents SET updated_at = %s::date + time '12:00' WHERE doc_id = ANY(%s)",
                          (date, chunk))  # fmt: skip
    assert half > 0

    runs = _backfill(deployment)
    airflow = deployment.airflow
    assert [r["logical_date"][:10] for r in runs] == list(DATES), runs
    for run in runs:
        states = airflow.task_states("corpus_compute", run["dag_run_id"])
        assert run["state"] == "success", f"{run['dag_run_id']}: {states}\n{airflow.log_tails()}"
        assert states["reconcile"] == "success", states
    first, second = runs
    assert first["end_date"] <= second["start_date"], "max_active_runs=1: the dates ran one after the other"
    xcom = "/taskInstances/export/xcomEntries/return_value"
    exported = [airflow.api("GET", _run_path("corpus_compute", r["dag_run_id"]) + xcom)["value"] for r in runs]
    docs = [entry["docs_exported"] for entry in exported]
    assert docs == [half, len(ids) - half], f"each run exports its own date's documents: {docs}"
    after_first = _rows(deployment.corpus_db)
    assert after_first["docs"] == len(ids)
    assert after_first["concepts"] == after_first["distinct_mentions"] > 0

    _backfill(deployment)  # the same dates again: reprocessed, replaced, never duplicated
    assert _rows(deployment.corpus_db) == after_first


# --- a deferred SLURM task, cleared and marked failed ------------------------------------------------------------


@pytest.fixture
def hold(tmp_path: Path) -> Iterator[Path]:
    """A cluster python that waits for `release`; released at teardown whatever happened."""
    folder = tmp_path / "hold"
    folder.mkdir()
    script = folder / "python"
    script.write_text(HOLDING_PYTHON.format(hold=shlex.quote(str(folder)), python=shlex.quote(sys.executable)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    yield folder
    (folder / "release").touch()


def _slurm_run(deployment: Deployment, hold: Path) -> str:
    if deployment.hpc is None:
        pytest.skip("the SLURM sandbox could not start here (see the hpc_sandbox fixture's message)")
    conf = {"backend": "slurm", "dictionary": str(deployment.terms), "embeddings": False, "selection": "all",
            "reprocess": True, "cluster_python": str(hold / "python"), "time_limit": "00:10:00"}  # fmt: skip
    run_id = f"ops__{uuid.uuid4().hex[:8]}"
    deployment.airflow.api("POST", "/dags/corpus_compute/dagRuns", {"dag_run_id": run_id, "logical_date": None,
                                                                   "conf": conf})  # fmt: skip
    return run_id


def _compute_slurm(airflow: AirflowStack, run_id: str) -> dict[str, Any]:
    return airflow.api("GET", _run_path("corpus_compute", run_id) + "/taskInstances/compute_slurm/0")


def _wait_deferred_on_a_job(airflow: AirflowStack, run_id: str, hold: Path, try_number: int,
                            timeout: float = 240) -> str:  # fmt: skip
    """The job id once the task (this try) is deferred and its job is running (held)."""
    deadline = time.monotonic() + timeout
    ti: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            ti = _compute_slurm(airflow, run_id)
        except AssertionError:  # not mapped yet (404)
            ti = {}
        started = hold / "started"
        if ti.get("state") == "deferred" and ti.get("try_number") == try_number and started.exists():
            return started.read_text().split()[0]
        if ti.get("state") in ("failed", "upstream_failed"):
            break
        time.sleep(1.0)
    raise AssertionError(f"compute_slurm not deferred on a running job: {ti}\n{airflow.log_tails()}")


def _job_state(deployment: Deployment, job_id: str) -> str:
    out = subprocess.run(deployment.hpc.ssh_argv("scontrol", "show", "job", job_id), capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return next(word.split("=", 1)[1] for word in out.split() if word.startswith("JobState="))


def test_clearing_a_deferred_slurm_task_reattaches_to_its_job(deployment: Deployment, hold: Path) -> None:
    """Clear while deferred: the old trigger leaves the job running, the new try waits on it; one job, success."""
    airflow = deployment.airflow
    run_id = _slurm_run(deployment, hold)
    job = _wait_deferred_on_a_job(airflow, run_id, hold, try_number=1)

    airflow.api("POST", "/dags/corpus_compute/clearTaskInstances", {
        "dry_run": False, "dag_run_id": run_id, "task_ids": ["compute_slurm"], "only_failed": False,
        "include_downstream": True, "reset_dag_runs": True,
    })  # fmt: skip
    assert _wait_deferred_on_a_job(airflow, run_id, hold, try_number=2) == job
    assert _job_state(deployment, job) == "RUNNING", "the clear did not cancel the job"

    (hold / "release").touch()
    run = airflow.wait_for_run("corpus_compute", run_id)
    states = airflow.task_states("corpus_compute", run_id)
    assert run["state"] == "success", f"{states}\n{airflow.log_tails()}"
    assert (hold / "started").read_text().split() == [job], "one submission: the new try re-attached"
    assert _compute_slurm(airflow, run_id)["try_number"] == 2


def _logs(airflow: AirflowStack) -> str:
    """Every log the deployment wrote (task and trigger logs included)."""
    return "".join(p.read_text(errors="replace") for p in airflow.home.rglob("*.log") if p.is_file())


def _wait_trigger_polled(airflow: AirflowStack, job: str) -> None:
    """Until the triggerer runs the job's trigger: its first poll is in the task log (the trigger's run() started,
    so a user's action on the task now cancels it and calls its on_kill)."""
    _wait_logged(airflow, re.compile(rf"SLURM job {job}(_\d+)?: [A-Z]+\b"), timeout=120)  # the trigger's first poll


def _wait_logged(airflow: AirflowStack, line: re.Pattern[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not line.search(_logs(airflow)):
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line matches {line.pattern!r} after {timeout:.0f}s\n{airflow.log_tails()}")
        time.sleep(1.0)


def _wait_job_ended(deployment: Deployment, job: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while (state := _job_state(deployment, job)) in LIVE_JOB_STATES and time.monotonic() < deadline:
        time.sleep(1.0)
    return state


def _xcom_path(run_id: str, task_id: str, key: str) -> str:
    return _run_path("corpus_compute", run_id) + f"/taskInstances/{task_id}/xcomEntries/{key}"


def _mark_compute_slurm_failed(airflow: AirflowStack, run_id: str) -> None:
    airflow.api("PATCH", _run_path("corpus_compute", run_id) + "/taskInstances/compute_slurm/0",
                {"new_state": "failed"})  # fmt: skip


def test_marking_a_deferred_slurm_task_failed_cancels_its_job(deployment: Deployment, hold: Path) -> None:
    """Mark failed while its trigger runs: the trigger's on_kill runs scancel; the run fails, nothing is loaded."""
    airflow = deployment.airflow
    before = _rows(deployment.corpus_db)
    run_id = _slurm_run(deployment, hold)
    job = _wait_deferred_on_a_job(airflow, run_id, hold, try_number=1)
    _wait_trigger_polled(airflow, job)

    _mark_compute_slurm_failed(airflow, run_id)
    state = _wait_job_ended(deployment, job)
    assert state == "CANCELLED", f"job {job} is {state} after mark-failed\n{airflow.log_tails()}"
    run = airflow.wait_for_run("corpus_compute", run_id)
    states = airflow.task_states("corpus_compute", run_id)
    assert run["state"] == "failed" and states["load"] in ("upstream_failed", "skipped"), states
    assert states["cancel_stopped_slurm_jobs"] == "success", f"{states}\n{airflow.log_tails()}"
    assert _rows(deployment.corpus_db) == before
    # the trigger's on_kill did it (its line may reach the log file a moment after the run ended)
    _wait_logged(airflow, re.compile(rf"task stopped by a user \(state \w+\): scancel {job}\b"))


def test_a_mark_failed_before_the_triggerer_ran_the_trigger_still_cancels_the_job(
    deployment: Deployment, hold: Path
) -> None:
    """The race: marked failed before the triggerer picked the trigger up, so no on_kill can run. The triggerer is
    paused from before the task defers until the run is over; the run's teardown cancels the job."""
    airflow = deployment.airflow
    before = _rows(deployment.corpus_db)
    run_id = _slurm_run(deployment, hold)
    deadline = time.monotonic() + 240
    while (states := airflow.task_states("corpus_compute", run_id)).get("slurm_request") not in ("running", "success"):
        assert time.monotonic() < deadline and "failed" not in states.values(), f"{states}\n{airflow.log_tails()}"
        time.sleep(0.5)
    with airflow.paused("triggerer"):
        ti: dict[str, Any] = {}
        while ti.get("state") != "deferred":
            assert time.monotonic() < deadline and ti.get("state") not in ("failed", "upstream_failed"), ti
            time.sleep(0.5)
            try:
                ti = _compute_slurm(airflow, run_id)
            except AssertionError:  # not mapped yet (404)
                ti = {}
        _mark_compute_slurm_failed(airflow, run_id)  # as early as it can be: the task has just deferred
        [job] = airflow.api("GET", _xcom_path(run_id, "compute_slurm", "slurm_job_ids") + "?map_index=0")["value"]
        state = _wait_job_ended(deployment, job)
        assert state == "CANCELLED", f"job {job} is {state} after mark-failed\n{airflow.log_tails()}"
        run = airflow.wait_for_run("corpus_compute", run_id)
        teardown = airflow.api("GET", _xcom_path(run_id, "cancel_stopped_slurm_jobs", "return_value"))["value"]
    states = airflow.task_states("corpus_compute", run_id)
    assert run["state"] == "failed" and states["cancel_stopped_slurm_jobs"] == "success", states
    assert teardown == {"cancelled": {"compute_slurm[0]": [job]}}, "the teardown cancelled it, not a trigger"
    assert _rows(deployment.corpus_db) == before
