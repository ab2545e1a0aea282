"""The trigger's serialize() round trip, and the tracker that decides when a wait is over."""

from __future__ import annotations

import importlib

from corpusbridge.hpc import monitor
from corpusbridge.hpc.parsing import IndexState
from corpusbridge_airflow.triggers.slurm import SlurmJobTrigger


def make() -> SlurmJobTrigger:
    return SlurmJobTrigger(
        slurm_conn_id="hpc",
        jobs={"12": [0, 2], "15": None},
        scratch_dir="/scratch/d/t/abc",
        is_array=True,
        poll_interval=3,
        unreachable_budget=90,
        stream_logs=False,
        done={1: "9"},
    )


def test_serialize_round_trip() -> None:
    classpath, kwargs = make().serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["jobs"] == {"12": [0, 2], "15": None} and kwargs["done"] == {"1": "9"}


def test_serialized_kwargs_are_json() -> None:
    import json

    _, kwargs = make().serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs


def test_classpath_is_importable_from_plugins() -> None:
    assert make().serialize()[0] == "corpusbridge_airflow.triggers.slurm.SlurmJobTrigger"


def row(job: str, index: int | None, state: str, code: int | None = None) -> IndexState:
    return IndexState(job, index, state, "", code)


def test_tracker_waits_until_every_expected_index_is_terminal() -> None:
    tracker = monitor.JobTracker({"12": [0, 1]})
    tracker.update([row("12", 0, "COMPLETED"), row("12", 1, "RUNNING"), row("99", 0, "FAILED")])
    assert tracker.waiting() == [("12", 1)] and tracker.active() == [("12", 1)]
    tracker.update([row("12", 1, "FAILED", 3)])
    assert tracker.waiting() == []
    assert [(o.index, o.state, o.exit_code, o.ok) for o in tracker.outcomes()] == [
        (0, "COMPLETED", None, True),
        (1, "FAILED", 3, False),
    ]


def test_tracker_remembers_indices_that_left_squeue() -> None:
    tracker = monitor.JobTracker({"12": [0, 1]})
    tracker.update([row("12", 0, "COMPLETED"), row("12", 1, "RUNNING")])
    tracker.update([row("12", 1, "COMPLETED")])  # index 0 aged out of squeue (MinJobAge)
    assert [o.state for o in tracker.outcomes()] == ["COMPLETED", "COMPLETED"]


def test_tracker_learns_indices_of_foreign_jobs() -> None:
    tracker = monitor.JobTracker({"30": None})
    assert tracker.waiting() == [("30", 0)]  # not seen yet: still waiting
    tracker.update([row("30", 0, "RUNNING"), row("30", 1, "PENDING"), row("30", 2, "PENDING")])
    assert len(tracker.waiting()) == 3
    tracker.update([row("30", i, "COMPLETED") for i in range(3)])
    assert tracker.waiting() == [] and all(o.ok for o in tracker.outcomes())


def test_never_seen_index_is_lost_not_completed() -> None:
    (outcome,) = monitor.JobTracker({"12": [4]}).outcomes()
    assert outcome.state == monitor.LOST and not outcome.ok
    assert "no longer known" in outcome.describe()


def test_outcome_describe_names_state_code_and_advice() -> None:
    text = monitor.IndexOutcome(3, "12", "TIMEOUT", 0, 15, "TimeLimit").describe()
    assert text.startswith("index 3 (job 12): TIMEOUT exit 0 signal 15") and "sbatch_options['time']" in text
