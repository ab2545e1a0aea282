"""Which SLURM jobs to cancel because the task that waited on them was stopped.

A deferred SLURM task a user marks failed (or success) cancels its jobs from the trigger's `on_kill`, but only when
the triggerer was already running that trigger: a mark that lands before the trigger started leaves nothing to run
`on_kill`, and the job runs on. So once a DAG run's SLURM tasks are done, a teardown looks again: a job the
controller still lists as pending or running, recorded by a task that stopped without reporting its result, has
nobody left waiting on it, and is cancelled (with the cancel marker, so that a later try resubmits its indices).
A task that is cleared, running or deferred is not stopped: its jobs are left for its try to re-attach to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from corpusbridge.hpc import jobs, monitor
from corpusbridge.hpc.states import UnknownSlurmState, classify
from corpusbridge.hpc.transport import Transport, TransportError

# Task instance states in which nobody waits on the task's jobs any more (a user's mark, or a final failure).
STOPPED_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})


@dataclass(frozen=True)
class TaskJobs:
    """What one SLURM task instance recorded: its state now, its jobs, their scratch dir, whether it reported."""

    label: str  # e.g. `compute_slurm[0]`, for the log
    state: str | None
    job_ids: tuple[str, ...]
    scratch: str | None = None
    reported: bool = False  # it returned its result: every index of its jobs had ended

    @property
    def stopped(self) -> bool:
        return self.state in STOPPED_STATES


@dataclass(frozen=True)
class Cancellation:
    label: str
    state: str | None
    job_ids: tuple[str, ...]


def candidates(tasks: Iterable[TaskJobs]) -> list[TaskJobs]:
    """Tasks that stopped with jobs recorded and no result reported: their jobs may still run unwatched."""
    return [t for t in tasks if t.stopped and t.job_ids and not t.reported]


def live_jobs(result: monitor.PollResult) -> set[str]:
    """Jobs squeue lists with at least one index not yet ended (a state this code does not know counts as live)."""
    live = {u.job_id for u in result.unreadable if u.job_id}
    for row in result.rows:
        try:
            ended = classify(row.state).terminal
        except UnknownSlurmState:
            ended = False
        if not ended:
            live.add(row.job_id)
    return live


def decide(tasks: Iterable[TaskJobs], live: set[str]) -> list[Cancellation]:
    """For each stopped, unreported task: its jobs the controller still lists as pending or running."""
    plan = []
    for task in candidates(tasks):
        running = tuple(j for j in task.job_ids if j in live)
        if running:
            plan.append(Cancellation(task.label, task.state, running))
    return plan


def cancel_stopped(transport: Transport, tasks: Sequence[TaskJobs]) -> list[Cancellation]:
    """scancel the live jobs of stopped tasks (one squeue for all); returns what was cancelled.

    An unreachable controller raises: guessing "nothing to cancel" would leave the jobs running for good.
    """
    todo = candidates(tasks)
    if not todo:
        return []
    polled = monitor.poll(transport, {j for t in todo for j in t.job_ids})
    if polled.unreachable:
        raise TransportError(f"could not ask the SLURM controller which jobs still run: {polled.unreachable}")
    plan = decide(todo, live_jobs(polled))
    scratch = {t.label: t.scratch for t in todo}
    for item in plan:
        jobs.cancel(transport, list(item.job_ids), scratch=scratch[item.label])
    return plan
