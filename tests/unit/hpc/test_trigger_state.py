"""The trigger's serialize() round trip, and the tracker that decides when a wait is over."""

from __future__ import annotations

import importlib

import pytest

from corpusbridge.hpc import monitor, parsing
from corpusbridge.hpc.events import LOST, IndexOutcome
from corpusbridge.hpc.parsing import ArrayTaskState
from corpusbridge.hpc.states import StatePolicy
from corpusbridge_airflow.triggers.slurm import UNKNOWN_STATE, SlurmJobTrigger, cancel_on_kill


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
        state_policy={"PREEMPTED": "wait"},
    )


def test_serialize_round_trip() -> None:
    classpath, kwargs = make().serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["jobs"] == {"12": [0, 2], "15": None} and kwargs["done"] == {"1": "9"}
    assert kwargs["state_policy"] == {"PREEMPTED": "wait"} and rebuilt.done == {1: "9"}


def test_serialized_kwargs_are_json() -> None:
    import json

    _, kwargs = make().serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs


def test_classpath_is_importable_from_plugins() -> None:
    assert make().serialize()[0] == "corpusbridge_airflow.triggers.slurm.SlurmJobTrigger"


def row(job: str, index: int | None, state: str, code: int | None = None) -> ArrayTaskState:
    return ArrayTaskState(job, index, state, "", code)


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
    assert outcome.state == LOST and not outcome.ok
    assert "no longer known" in outcome.describe()


def test_outcome_describe_names_state_code_and_advice() -> None:
    text = IndexOutcome(3, "12", "TIMEOUT", 0, 15, "TimeLimit").describe()
    assert text.startswith("index 3 (job 12): TIMEOUT exit 0 signal 15") and "sbatch_options['time']" in text


def test_a_vanished_job_settles_the_wait_after_two_clean_ticks() -> None:
    """The rule that used to live in the trigger: squeue forgot the job, so ask scontrol/sacct once."""
    tracker = monitor.JobTracker({"12": [0]})
    tracker.observe(monitor.PollResult([row("12", 0, "RUNNING")]))
    assert not tracker.settled()
    tracker.observe(monitor.PollResult([]))
    assert not tracker.settled()
    tracker.observe(monitor.PollResult([]))
    assert tracker.settled()


def test_an_unreadable_line_of_our_job_is_not_a_vanished_job() -> None:
    tracker = monitor.JobTracker({"6": [1, 3]})
    cut = parsing.UnreadableLine("squeue", "6_[1,3,6,10,15,21,28,36,45,55,6|PENDING|x", "cut", "6", True)
    for _ in range(3):
        tracker.observe(monitor.PollResult([], unreadable=[cut]))
    assert not tracker.settled() and tracker.waiting() == [("6", 1), ("6", 3)]


def test_the_state_policy_decides_whether_preempted_ends_the_wait() -> None:
    default = monitor.JobTracker({"12": [0]})
    default.update([row("12", 0, "PREEMPTED")])
    assert default.waiting() == []
    requeue_site = monitor.JobTracker({"12": [0]}, StatePolicy.from_mapping({"PREEMPTED": "wait"}))
    requeue_site.update([row("12", 0, "PREEMPTED")])
    assert requeue_site.waiting() == [("12", 0)]


def test_special_exit_keeps_waiting_for_release() -> None:
    tracker = monitor.JobTracker({"8": [0]})
    tracker.update([row("8", None, "SPECIAL_EXIT")])
    assert tracker.waiting() == [("8", 0)]


@pytest.mark.parametrize(
    ("state", "cancel"),
    [
        ("failed", True),
        ("success", True),
        (None, False),
        ("scheduled", False),
        ("queued", False),
        (UNKNOWN_STATE, True),
    ],
)
def test_on_kill_cancels_only_a_stopped_task_not_a_cleared_one(state, cancel: bool) -> None:
    assert cancel_on_kill(state) is cancel


def test_task_state_is_read_from_a_get_task_states_answer() -> None:
    from corpusbridge_airflow.triggers.slurm import state_in_answer

    assert state_in_answer({"compute": "failed"}, "compute", -1) == "failed"
    assert state_in_answer({"compute_3": None}, "compute", 3) is None  # cleared
    assert state_in_answer({}, "compute", -1) == UNKNOWN_STATE
