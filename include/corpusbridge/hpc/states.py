"""Every SLURM job state, and what it means for a task waiting on it.

The table is exhaustive on purpose: a state we do not know raises, because guessing "finished" for a
state added by a newer SLURM would mark running work as done (the classic "sacct failed, assume
COMPLETED" bug).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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


# Names and meanings from `man squeue` (JOB STATE CODES), SLURM 22.05 through 25.11 (EXPEDITING is new in 25.11).
# tests/unit/hpc/test_states.py holds each release's list and checks this table against all of them.
STATES: dict[str, StateInfo] = _table(
    ("PENDING", Phase.WAITING, "queued, waiting for resources or priority"),
    ("CONFIGURING", Phase.WAITING, "resources allocated, nodes booting"),
    ("REQUEUED", Phase.WAITING, "requeued, will run again"),
    ("REQUEUE_HOLD", Phase.WAITING, "requeued and held; needs `scontrol release`"),
    ("SPECIAL_EXIT", Phase.WAITING, "requeued and held in a special state by its epilog; needs `scontrol release`"),
    ("EXPEDITING", Phase.WAITING, "being requeued at top priority (--requeue=expedite, SLURM 25.11)"),
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
    ("REVOKED", Phase.FAILED, "revoked: a sibling cluster of the federation runs it"),
)


def state_name(state: str) -> str:
    """`CANCELLED by 1000` -> `CANCELLED`, `completed+` -> `COMPLETED`: sacct decorates, the first word counts."""
    return state.strip().split(" ", 1)[0].rstrip("+").upper()


def classify(state: str) -> StateInfo:
    """The table entry for a state as squeue, sacct or scontrol print it (decorations ignored, see state_name)."""
    key = state_name(state)
    try:
        return STATES[key]
    except KeyError:
        raise UnknownSlurmState(
            f"unknown SLURM job state {state!r}: corpusbridge does not guess whether it is finished; "
            "add it to corpusbridge.hpc.states.STATES"
        ) from None


# States whose meaning depends on how a site runs SLURM, with what each choice means. The first is the default.
POLICY_CHOICES: dict[str, tuple[Phase, ...]] = {
    # PreemptMode=REQUEUE sites requeue a preempted job (wait); PreemptMode=CANCEL sites do not (fail).
    "PREEMPTED": (Phase.FAILED, Phase.WAITING),
    # With --requeue (or JobRequeue=1) a job whose node failed is requeued by SLURM itself.
    "NODE_FAIL": (Phase.FAILED, Phase.WAITING),
    # Held for `scontrol release`: an operator may release it (wait), or the site never does (fail).
    "SPECIAL_EXIT": (Phase.WAITING, Phase.FAILED),
    "REQUEUE_HOLD": (Phase.WAITING, Phase.FAILED),
}
_POLICY_WORDS = {"wait": Phase.WAITING, "fail": Phase.FAILED}


class StatePolicyError(ValueError):
    """A state policy that names a state or a choice the table does not offer."""


@dataclass(frozen=True)
class StatePolicy:
    """What a site-dependent state means on this cluster: `{"PREEMPTED": "wait"}` waits for the requeue.

    Only the states of POLICY_CHOICES can be set; every other state keeps its table meaning. A state set to
    "wait" keeps the task waiting until SLURM moves the job on: give the task an `execution_timeout`.
    """

    overrides: Mapping[str, Phase] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str] | None) -> StatePolicy:
        """Validate `{"PREEMPTED": "wait", "SPECIAL_EXIT": "fail"}` (case-insensitive)."""
        overrides: dict[str, Phase] = {}
        for key, value in (raw or {}).items():
            name, word = str(key).upper(), str(value).lower()
            if name not in POLICY_CHOICES:
                raise StatePolicyError(
                    f"state policy: {key!r} cannot be set; choose among {sorted(POLICY_CHOICES)} "
                    "(other states mean the same on every cluster)"
                )
            if word not in _POLICY_WORDS:
                raise StatePolicyError(f"state policy: {key}={value!r}; say 'wait' or 'fail'")
            overrides[name] = _POLICY_WORDS[word]
        return cls(overrides)

    def as_dict(self) -> dict[str, str]:
        words = {phase: word for word, phase in _POLICY_WORDS.items()}
        return {name: words[phase] for name, phase in sorted(self.overrides.items())}

    def merged(self, other: StatePolicy) -> StatePolicy:
        """This policy with `other`'s choices on top (an operator argument over the connection's extra)."""
        return StatePolicy({**self.overrides, **other.overrides})

    def classify(self, state: str) -> StateInfo:
        info = classify(state)
        phase = self.overrides.get(info.name)
        if phase is None or phase is info.phase:
            return info
        told = "waits for SLURM to requeue or release it" if phase is Phase.WAITING else "counts as failed"
        return replace(info, phase=phase, meaning=f"{info.meaning}; by this cluster's state policy it {told}")


DEFAULT_POLICY = StatePolicy()
