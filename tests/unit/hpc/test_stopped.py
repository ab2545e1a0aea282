"""Which jobs the run's teardown cancels: only live jobs of tasks that stopped without reporting, never a cleared
or waiting task's (those re-attach); one squeue for all, an unreachable controller is an error, not "nothing"."""

from __future__ import annotations

import pytest

from corpusbridge.hpc import monitor, parsing, stopped
from corpusbridge.hpc.parsing import ArrayTaskState
from corpusbridge.hpc.transport import CommandResult, TransportError


def task(label: str, state: str | None, *jobs: str, reported: bool = False) -> stopped.TaskJobs:
    return stopped.TaskJobs(label, state, tuple(jobs), scratch=f"/scratch/{label}", reported=reported)


@pytest.mark.parametrize("state", ["failed", "success", "skipped", "upstream_failed", "removed"])
def test_a_stopped_task_with_live_jobs_is_cancelled(state: str) -> None:
    plan = stopped.decide([task("compute_slurm[0]", state, "12", "13")], live={"12"})
    assert plan == [stopped.Cancellation("compute_slurm[0]", state, ("12",))]


@pytest.mark.parametrize("state", [None, "scheduled", "queued", "running", "deferred", "up_for_retry", "restarting"])
def test_a_cleared_or_waiting_task_keeps_its_jobs(state: str | None) -> None:
    assert stopped.decide([task("compute_slurm[0]", state, "12")], live={"12"}) == []


def test_finished_jobs_and_reported_tasks_are_left_alone() -> None:
    tasks = [
        task("compute_slurm[0]", "failed", "12"),  # its job ended (a real failure): nothing to cancel
        task("neighbors_slurm[0]", "success", "20", reported=True),  # returned its result: every index ended
        task("neighbors_slurm[1]", "failed"),  # never submitted
    ]
    assert stopped.candidates(tasks) == [tasks[0]]
    assert stopped.decide(tasks, live={"20"}) == []


def test_live_jobs_are_those_squeue_lists_not_ended() -> None:
    rows = [
        ArrayTaskState("1", 0, "COMPLETED"),
        ArrayTaskState("1", 1, "RUNNING"),
        ArrayTaskState("2", None, "PENDING"),
        ArrayTaskState("3", 0, "CANCELLED"),
        ArrayTaskState("4", None, "SOME_FUTURE_STATE"),
    ]
    unreadable = [parsing.UnreadableLine("squeue", "5_0|?|", "bad field", job_id="5")]
    assert stopped.live_jobs(monitor.PollResult(rows, unreadable=unreadable)) == {"1", "2", "4", "5"}


class RecordingTransport:
    """A test double for the cluster's SSH transport: every command succeeds and is recorded."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def run(self, argv, timeout=None, stdin=None):
        self.commands.append(list(argv))
        return CommandResult(tuple(argv), 0, "", "")


@pytest.fixture
def squeue(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """What the controller lists (set `answer[0]`); the squeue calls made are recorded in `asked`."""
    asked: list[tuple[str, ...]] = []
    answer = [monitor.PollResult([])]

    def poll(transport, job_ids):
        asked.append(tuple(sorted(job_ids)))
        return answer[0]

    monkeypatch.setattr(monitor, "poll", poll)
    return asked, answer  # type: ignore[return-value]


def test_cancel_stopped_polls_once_marks_and_cancels_only_live_jobs(squeue) -> None:
    asked, answer = squeue
    answer[0] = monitor.PollResult([ArrayTaskState("12", 0, "RUNNING"), ArrayTaskState("20", 0, "COMPLETED")])
    tasks = [task("compute_slurm[0]", "failed", "12"), task("neighbors_slurm[0]", "failed", "20"),
             task("neighbors_slurm[1]", "running", "21")]  # fmt: skip
    transport = RecordingTransport()
    plan = stopped.cancel_stopped(transport, tasks)  # type: ignore[arg-type]
    assert plan == [stopped.Cancellation("compute_slurm[0]", "failed", ("12",))]
    assert asked == [("12", "20")], "one squeue, for the stopped tasks' jobs only"
    marker, scancel = transport.commands
    assert "/scratch/compute_slurm[0]/.corpusbridge/cancelled" in marker and marker[-1] == "12"
    assert scancel == ["scancel", "12"]


def test_an_unreachable_controller_is_an_error_and_nothing_is_cancelled(squeue) -> None:
    _, answer = squeue
    answer[0] = monitor.PollResult([], unreachable="Unable to contact slurm controller")
    transport = RecordingTransport()
    with pytest.raises(TransportError, match="which jobs still run"):
        stopped.cancel_stopped(transport, [task("compute_slurm[0]", "failed", "12")])  # type: ignore[arg-type]
    assert transport.commands == []


def test_nothing_stopped_asks_nothing(squeue) -> None:
    asked, _ = squeue
    transport = RecordingTransport()
    assert stopped.cancel_stopped(transport, [task("compute_slurm[0]", "deferred", "12")]) == []  # type: ignore[arg-type]
    assert asked == [] and transport.commands == []
