"""The event a SLURM wait ends with: what the trigger sends, and what the operator and the sensor read.

Typed on both sides; plain JSON only at the boundary (`to_dict()` / `from_dict()`), because Airflow stores a
trigger event as JSON, which turns every int key into a string. Inside, indices are ints everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from corpusbridge.hpc.states import STATES, Phase, classify, state_name

# Ours, not SLURM's: the controller no longer knows an index it never reported finished.
LOST = "LOST"


class EventStatus(StrEnum):
    """How a wait ended."""

    DONE = "done"  # every index reached a final state (success or not: see the outcomes)
    ERROR = "error"  # the wait itself failed (controller unreachable past the budget); jobs may still run


class SlurmEventError(ValueError):
    """A payload that is not a SLURM event: a trigger from another version, or a hand-made event."""


@dataclass(frozen=True)
class IndexOutcome:
    """The final word on one array index (index 0 for a single job)."""

    index: int
    job_id: str
    state: str
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    cancelled_by: str | None = None  # sacct's `CANCELLED by 1000`: who cancelled it

    @property
    def ok(self) -> bool:
        return self.state in STATES and classify(self.state).phase is Phase.SUCCEEDED

    @property
    def label(self) -> str:
        """`<job>_<index>`: the key of this index in the XCom `states`."""
        return f"{self.job_id}_{self.index}"

    def describe(self) -> str:
        code = f" exit {self.exit_code}" if self.exit_code is not None else ""
        sig = f" signal {self.signal}" if self.signal else ""
        by = f" by {self.cancelled_by}" if self.cancelled_by else ""
        return f"index {self.index} (job {self.job_id}): {self.state}{by}{code}{sig} — {self.meaning()}"

    def meaning(self) -> str:
        if self.state == LOST:
            return "no longer known to the controller"
        if state_name(self.state) not in STATES:
            return "a state corpusbridge does not know"
        meaning = classify(self.state).meaning
        if self.cancelled_by:
            meaning += f"; SLURM says it was cancelled by user {self.cancelled_by}"
        return meaning

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "job_id": self.job_id,
            "state": self.state,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "reason": self.reason,
            "cancelled_by": self.cancelled_by,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> IndexOutcome:
        try:
            return cls(
                index=int(raw["index"]),
                job_id=str(raw["job_id"]),
                state=str(raw["state"]),
                exit_code=_optional_int(raw.get("exit_code")),
                signal=_optional_int(raw.get("signal")),
                reason=str(raw.get("reason") or ""),
                cancelled_by=raw.get("cancelled_by"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SlurmEventError(f"not an index outcome: {dict(raw)!r} ({exc})") from None


@dataclass(frozen=True)
class SlurmEvent:
    """One wait's result: the jobs waited on, each index's outcome, and what an earlier try already completed."""

    status: EventStatus
    jobs: dict[str, list[int] | None]  # job id -> indices waited on (None: a job submitted elsewhere, all of them)
    outcomes: tuple[IndexOutcome, ...] = ()
    scratch_dir: str | None = None
    is_array: bool = True
    done: dict[int, str] = field(default_factory=dict)  # index -> job id that completed it in an earlier try
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: int keys become strings here and only here."""
        return {
            "status": self.status.value,
            "jobs": {job: (list(ix) if ix is not None else None) for job, ix in self.jobs.items()},
            "outcomes": [o.to_dict() for o in self.outcomes],
            "scratch_dir": self.scratch_dir,
            "is_array": self.is_array,
            "done": {str(index): job for index, job in sorted(self.done.items())},
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any] | None) -> SlurmEvent:
        """The event back from its JSON form; anything else raises SlurmEventError naming what is wrong."""
        if not isinstance(payload, Mapping):
            raise SlurmEventError(f"expected a SLURM event (a JSON object), got {payload!r}")
        missing = sorted({"status", "jobs"} - set(payload))
        if missing:
            raise SlurmEventError(f"SLURM event without {missing}: {dict(payload)!r}")
        try:
            status = EventStatus(payload["status"])
        except ValueError:
            raise SlurmEventError(f"unknown SLURM event status {payload['status']!r}") from None
        return cls(
            status=status,
            jobs=_jobs(payload["jobs"]),
            outcomes=tuple(IndexOutcome.from_dict(o) for o in payload.get("outcomes") or ()),
            scratch_dir=payload.get("scratch_dir"),
            is_array=bool(payload.get("is_array", True)),
            done=index_map(payload.get("done") or {}),
            message=str(payload.get("message") or ""),
        )


def index_map(raw: Mapping[Any, Any]) -> dict[int, str]:
    """`{"3": "12"}` (JSON) -> `{3: "12"}`."""
    try:
        return {int(index): str(job) for index, job in raw.items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise SlurmEventError(f"expected {{index: job id}}, got {raw!r} ({exc})") from None


def xcom_states(outcomes: Iterable[IndexOutcome]) -> dict[str, str]:
    """The XCom `states` field, one shape for the operator and the sensor: `{"<job>_<index>": state}`."""
    return {o.label: o.state for o in sorted(outcomes, key=lambda o: (o.index, o.job_id))}


def _jobs(raw: Any) -> dict[str, list[int] | None]:
    if not isinstance(raw, Mapping):
        raise SlurmEventError(f"expected {{job id: [indices] or null}}, got {raw!r}")
    try:
        return {str(job): ([int(i) for i in ix] if ix is not None else None) for job, ix in raw.items()}
    except (TypeError, ValueError) as exc:
        raise SlurmEventError(f"expected {{job id: [indices] or null}}, got {raw!r} ({exc})") from None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
