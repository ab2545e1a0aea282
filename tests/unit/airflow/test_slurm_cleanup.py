"""How the teardown reads a run's SLURM task instances from Airflow's answers (no Airflow needed: the task instance
is a test double with the two methods the stage calls)."""

from __future__ import annotations

from typing import Any

import pytest

from corpusbridge_airflow.links import JOB_IDS_XCOM, SCRATCH_XCOM
from corpusbridge_airflow.stages import slurm_cleanup

TASKS = ("compute_slurm", "neighbors_slurm")


def test_split_key_names_the_task_and_map_index() -> None:
    assert slurm_cleanup.split_key("compute_slurm_3", TASKS) == ("compute_slurm", 3)
    assert slurm_cleanup.split_key("compute_slurm", TASKS) == ("compute_slurm", -1)
    assert slurm_cleanup.split_key("compute_slurm_x", TASKS) is None
    assert slurm_cleanup.split_key("load", TASKS) is None


class RecordedRun:
    """A test double for the teardown's RuntimeTaskInstance: task states and XComs of one run, from tables."""

    dag_id, run_id = "corpus_compute", "manual__1"

    def __init__(self, states: dict[str, Any], xcoms: dict[tuple[str, int, str], Any]) -> None:
        self.states, self.xcoms, self.pulled = states, xcoms, []

    def get_task_states(self, *, dag_id: str, task_ids: list[str], run_ids: list[str]) -> dict[str, Any]:
        assert dag_id == self.dag_id and run_ids == [self.run_id] and task_ids == list(TASKS)
        return {self.run_id: self.states}

    def xcom_pull(self, *, task_ids: str, key: str, map_indexes: int | None = None, default: Any = None) -> Any:
        self.pulled.append((task_ids, map_indexes, key))
        if map_indexes is None:  # every map index's value, as Airflow answers a pull without map_indexes
            return [v for (t, _, k), v in sorted(self.xcoms.items()) if t == task_ids and k == key]
        return self.xcoms.get((task_ids, map_indexes, key), default)


def test_only_stopped_instances_with_jobs_are_read() -> None:
    run = RecordedRun(
        {
            "compute_slurm_0": "failed",
            "compute_slurm_1": "deferred",
            "neighbors_slurm_0": "success",
            "neighbors_slurm": "skipped",
        },
        {
            ("compute_slurm", 0, JOB_IDS_XCOM): ["12"],
            ("compute_slurm", 0, SCRATCH_XCOM): "/scratch/a",
            ("compute_slurm", 1, JOB_IDS_XCOM): ["13"],
            ("neighbors_slurm", 0, JOB_IDS_XCOM): ["20"],
            ("neighbors_slurm", 0, "return_value"): {"job_ids": ["20"]},
        },
    )
    records = slurm_cleanup.recorded_tasks(run, TASKS)
    assert [(r.label, r.state, r.job_ids, r.scratch, r.reported) for r in records] == [
        ("compute_slurm[0]", "failed", ("12",), "/scratch/a", False),
        ("neighbors_slurm[0]", "success", ("20",), None, True),
    ]
    assert all(map_index != 1 for _, map_index, _ in run.pulled), "a deferred instance's XComs are not read"
    assert all(map_index != -1 for _, map_index, _ in run.pulled), "an unexpanded skipped instance never ran"


def test_a_run_without_slurm_jobs_skips() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    run = RecordedRun({"compute_slurm": "skipped", "neighbors_slurm": "skipped"}, {})
    with pytest.raises(AirflowSkipException, match="no SLURM job was submitted"):
        slurm_cleanup.cancel_stopped_stage(run, TASKS)


def test_a_run_whose_tasks_reported_asks_nothing(monkeypatch, caplog) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", raising=False)  # no SSH session could be opened anyway
    run = RecordedRun(
        {"compute_slurm_0": "success"},
        {("compute_slurm", 0, JOB_IDS_XCOM): ["12"], ("compute_slurm", 0, "return_value"): {"job_ids": ["12"]}},
    )
    with caplog.at_level("INFO"):
        assert slurm_cleanup.cancel_stopped_stage(run, TASKS) == {"cancelled": {}}
    assert "nothing to cancel" in caplog.text


def test_stopped_jobs_without_a_connection_are_named(monkeypatch, caplog) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", raising=False)
    run = RecordedRun({"compute_slurm_0": "failed"}, {("compute_slurm", 0, JOB_IDS_XCOM): ["12"]})
    with caplog.at_level("INFO"):
        assert slurm_cleanup.cancel_stopped_stage(run, TASKS) == {"cancelled": {}}
    assert "compute_slurm[0]" in caplog.text and "no Connection corpusbridge_hpc" in caplog.text


def test_a_task_that_failed_before_submitting_is_not_read_index_by_index() -> None:
    """Pulling one map index that has no XCom logs an error in Airflow's output: ask once per task instead."""
    run = RecordedRun({"compute_slurm_0": "failed", "neighbors_slurm_0": "upstream_failed"}, {})
    assert slurm_cleanup.recorded_tasks(run, TASKS) == []
    assert all(map_index is None for _, map_index, _ in run.pulled), run.pulled
