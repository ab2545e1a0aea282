"""Every SLURM job state, and what it means for a task waiting on it.

The table is exhaustive on purpose: a state we do not know raises, because guessing "finished" for a
state added by a newer SLURM would mark running work as done (the classic "sacct failed, assume
COMPLETED" bug).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """Where a job (or one array index) stands, from the waiting task's point of view."""

    WAITING = "waiting"  # not started yet, or held: keep polling
    ACTIVE = "active"  # running or finishing: keep polling, stream logs
    SUCCEEDED = "succeeded"  # terminal, the command exited 0
    FAILED = "failed"  # terminal, the index must be resubmitted to get its output


@dataclass(frozen=True)
class StateInfo:
    name: str
    phase: Phase
    meaning: str

    @property
    def terminal(self) -> bool:
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)


class UnknownSlurmState(ValueError):
    """The scheduler reported a state this table does not know; never guessed to be terminal."""


def _table(*rows: tuple[str, Phase, str]) -> dict[str, StateInfo]:
    return {name: StateInfo(name, phase, meaning) for name, phase, meaning in rows}


# Names and meanings from `man squeue` (JOB STATE CODES), SLURM 22.05 through 24.x.
STATES: dict[str, StateInfo] = _table(
    ("PENDING", Phase.WAITING, "queued, waiting for resources or priority"),
    ("CONFIGURING", Phase.WAITING, "resources allocated, nodes booting"),
    ("REQUEUED", Phase.WAITING, "requeued, will run again"),
    ("REQUEUE_HOLD", Phase.WAITING, "requeued and held; needs `scontrol release`"),
    ("REQUEUE_FED", Phase.WAITING, "requeued by the federation"),
    ("RESV_DEL_HOLD", Phase.WAITING, "held because its reservation was deleted"),
    ("SUSPENDED", Phase.WAITING, "suspended; resumes later"),
    ("STOPPED", Phase.WAITING, "stopped with SIGSTOP; resumes later"),
    ("RUNNING", Phase.ACTIVE, "running"),
    ("COMPLETING", Phase.ACTIVE, "finishing: some processes still alive"),
    ("RESIZING", Phase.ACTIVE, "changing size"),
    ("SIGNALING", Phase.ACTIVE, "being signalled"),
    ("STAGE_OUT", Phase.ACTIVE, "staging out burst-buffer data"),
    ("COMPLETED", Phase.SUCCEEDED, "finished with exit code 0"),
    ("FAILED", Phase.FAILED, "finished with a non-zero exit code"),
    ("TIMEOUT", Phase.FAILED, "killed at its time limit; raise sbatch_options['time']"),
    ("OUT_OF_MEMORY", Phase.FAILED, "killed for exceeding its memory; raise sbatch_options['mem']"),
    ("NODE_FAIL", Phase.FAILED, "its node failed"),
    ("PREEMPTED", Phase.FAILED, "preempted by a higher-priority job"),
    ("CANCELLED", Phase.FAILED, "cancelled (scancel, or by an administrator)"),
    ("BOOT_FAIL", Phase.FAILED, "its node failed to boot"),
    ("DEADLINE", Phase.FAILED, "missed its --deadline"),
    ("SPECIAL_EXIT", Phase.FAILED, "requeued in a held special state by its epilog"),
    ("REVOKED", Phase.FAILED, "revoked: a sibling cluster of the federation runs it"),
)


def classify(state: str) -> StateInfo:
    """The table entry for a state as squeue, sacct or scontrol print it.

    sacct adds details ("CANCELLED by 1000") and some versions a trailing "+", so only the first word counts.
    """
    key = state.strip().split(" ", 1)[0].rstrip("+").upper()
    try:
        return STATES[key]
    except KeyError:
        raise UnknownSlurmState(
            f"unknown SLURM job state {state!r}: corpusbridge does not guess whether it is finished; "
            "add it to corpusbridge.hpc.states.STATES"
        ) from None
