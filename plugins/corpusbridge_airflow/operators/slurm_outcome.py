"""Turning a trigger event into per-index outcomes, and a failure message a DAG author can act on."""

from __future__ import annotations

from typing import Any

from corpusbridge.hpc import jobs, monitor, script
from corpusbridge.hpc.monitor import IndexOutcome as Outcome
from corpusbridge.hpc.transport import Transport

STDERR_TAIL_BYTES = 1500
MAX_INDICES_IN_MESSAGE = 10


def resolve_outcomes(
    transport: Transport, event: dict[str, Any], scratch_dir: str, done: dict[str, str]
) -> list[Outcome]:
    """One outcome per index: earlier-try successes, then this try's, with LOST ones checked against markers.

    An index finished long ago can drop out of squeue/scontrol (MinJobAge) before we read its exit code;
    its completion marker is then the proof that it exited 0.
    """
    by_index = {
        int(i): Outcome(int(i), job, "COMPLETED", 0, reason="completed in an earlier try") for i, job in done.items()
    }
    rows = [Outcome(**row) for row in event.get("outcomes", [])]
    if any(o.state == monitor.LOST for o in rows):
        markers = jobs.completed_indices(transport, scratch_dir)
        rows = [_marked(o, markers[o.index]) if o.state == monitor.LOST and o.index in markers else o for o in rows]
    for outcome in rows:
        by_index[outcome.index] = outcome
    return [by_index[i] for i in sorted(by_index)]


def _marked(outcome: Outcome, job_id: str) -> Outcome:
    return Outcome(outcome.index, job_id or outcome.job_id, "COMPLETED", 0, reason="completion marker (aged out)")


def fail_message(task_id: str, transport: Transport, failed: list[Outcome], scratch_dir: str, is_array: bool) -> str:
    """Names every failed index with its state, and the stderr tail of the first few."""
    lines = [f"{task_id}: {len(failed)} SLURM index(es) did not complete: {[o.index for o in failed]}"]
    for outcome in failed[:MAX_INDICES_IN_MESSAGE]:
        lines.append(f"- {outcome.describe()}")
        path = script.log_file(scratch_dir, outcome.job_id, outcome.index if is_array else None, "err")
        tail = monitor.file_tail(transport, path, STDERR_TAIL_BYTES).strip() if outcome.job_id else ""
        if tail:
            lines.append("  stderr tail:\n" + "\n".join("    " + ln for ln in tail.splitlines()[-15:]))
    if len(failed) > MAX_INDICES_IN_MESSAGE:
        lines.append(f"... and {len(failed) - MAX_INDICES_IN_MESSAGE} more")
    lines.append("A retry resubmits only these indices.")
    return "\n".join(lines)
