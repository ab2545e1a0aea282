"""From a finished wait to a verdict per index: the rules, free of any framework.

- An index an earlier try completed counts as COMPLETED (its completion marker says so).
- An index the controller forgot (LOST: aged out of squeue/scontrol before its exit code was read) counts as
  COMPLETED when its completion marker exists, and as lost otherwise.
- An index CANCELLED in a job that corpusbridge cancelled itself (a cancel marker: the task was cleared or
  killed while this try re-attached to it) is neither success nor failure: it is resubmitted.
The Airflow operator and sensor only turn the verdict into task success, failure, or another deferral.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corpusbridge.hpc import jobs, monitor, script
from corpusbridge.hpc.events import LOST, IndexOutcome, SlurmEvent
from corpusbridge.hpc.transport import Transport

STDERR_TAIL_BYTES = 1500
MAX_INDICES_IN_MESSAGE = 10


@dataclass(frozen=True)
class Verdict:
    """Every index's outcome, and the indices to submit again because corpusbridge cancelled them itself."""

    outcomes: list[IndexOutcome]
    resubmit: list[int]

    @property
    def failed(self) -> list[IndexOutcome]:
        return [o for o in self.outcomes if not o.ok and o.index not in self.resubmit]


def decide(event: SlurmEvent, markers: jobs.Markers) -> Verdict:
    """Apply the rules above to an event and the scratch dir's markers (no I/O)."""
    by_index = {
        index: IndexOutcome(index, job, "COMPLETED", 0, reason="completed in an earlier try")
        for index, job in event.done.items()
    }
    for outcome in event.outcomes:
        by_index[outcome.index] = _with_marker(outcome, markers.done)
    outcomes = [by_index[i] for i in sorted(by_index)]
    resubmit = [o.index for o in outcomes if o.state == "CANCELLED" and o.job_id in markers.cancelled]
    return Verdict(outcomes, resubmit)


def _with_marker(outcome: IndexOutcome, done: Mapping[int, str]) -> IndexOutcome:
    """A LOST index with a completion marker exited 0 before it aged out of the controller."""
    if outcome.state != LOST or outcome.index not in done:
        return outcome
    job_id = done[outcome.index] or outcome.job_id
    return IndexOutcome(outcome.index, job_id, "COMPLETED", 0, reason="completion marker (aged out)")


def resolve(transport: Transport, event: SlurmEvent) -> Verdict:
    """`decide`, reading the markers only when a rule needs them (a LOST or CANCELLED index)."""
    needs_markers = event.scratch_dir and any(o.state in (LOST, "CANCELLED") for o in event.outcomes)
    markers = jobs.read_markers(transport, event.scratch_dir) if needs_markers and event.scratch_dir else None
    return decide(event, markers or jobs.Markers())


def failure_message(
    task_id: str, transport: Transport | None, failed: Iterable[IndexOutcome], scratch_dir: str | None, is_array: bool
) -> str:
    """Names every failed index with its state, and the stderr tail of the first few (when there is a scratch dir)."""
    failed = list(failed)
    lines = [f"{task_id}: {len(failed)} SLURM index(es) did not complete: {[o.index for o in failed]}"]
    for outcome in failed[:MAX_INDICES_IN_MESSAGE]:
        lines.append(f"- {outcome.describe()}")
        tail = _stderr_tail(transport, outcome, scratch_dir, is_array)
        if tail:
            lines.append("  stderr tail:\n" + "\n".join("    " + ln for ln in tail.splitlines()[-15:]))
    if len(failed) > MAX_INDICES_IN_MESSAGE:
        lines.append(f"... and {len(failed) - MAX_INDICES_IN_MESSAGE} more")
    if scratch_dir:
        lines.append("A retry resubmits only these indices.")
    return "\n".join(lines)


def _stderr_tail(transport: Transport | None, outcome: IndexOutcome, scratch_dir: str | None, is_array: bool) -> str:
    if transport is None or not scratch_dir or not outcome.job_id:
        return ""
    path = script.log_file(scratch_dir, outcome.job_id, outcome.index if is_array else None, "err")
    return monitor.file_tail(transport, path, STDERR_TAIL_BYTES).strip()
