"""Free functions over SLURM's machine-readable output (`--parsable`, `-h -o '%i|%T|%r'`, `-P`, `show -o`).

Nothing here parses human-oriented tables. Array jobs come back one row per index; a pending remainder
such as `12_[3-7%2]` is expanded so that every index has exactly one row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpusbridge.hpc.states import classify

# What the SLURM clients print when slurmctld is down or unreachable (22.05 and later).
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Zero Bytes were transmitted or received",
    "Communication connection failure",
)
_ID = re.compile(r"^(?P<job>\d+)(?:_(?P<idx>\d+|\[(?P<range>[^\]]+)\]))?$")
_SCONTROL_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9:/_]*)=")


@dataclass(frozen=True)
class IndexState:
    """The state of one job, or of one index of an array job (index None for a plain job)."""

    job_id: str
    index: int | None
    state: str
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None
    name: str | None = None

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.job_id, self.index)


class SlurmOutputError(ValueError):
    """Scheduler output that does not have the shape the format string asked for."""


def parse_sbatch_parsable(stdout: str) -> str:
    """The job id from `sbatch --parsable` (`12` or `12;cluster`)."""
    line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = line.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SlurmOutputError(f"sbatch --parsable printed {stdout!r}, not a job id")
    return job_id


def preflight_message(stderr: str) -> str:
    """The scheduler's one-line verdict from `sbatch --test-only` (it writes to stderr)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "(sbatch --test-only printed nothing)"


def controller_unreachable(stderr: str) -> bool:
    """True when a SLURM client failed because it could not reach slurmctld: never a statement about a job."""
    return any(marker in stderr for marker in _UNREACHABLE)


def expand_indices(spec: str) -> list[int]:
    """`1-3%2` -> [1, 2, 3]; `1,4,6-7` -> [1, 4, 6, 7] (the `%K` throttle is dropped)."""
    indices: list[int] = []
    for part in spec.split("%", 1)[0].split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise SlurmOutputError(f"not an array index list: {spec!r}")
        indices.extend(range(int(low), int(high or low) + 1))
    return indices


def split_job_id(text: str) -> tuple[str, list[int | None]]:
    """`12_3` -> ("12", [3]); `12_[4-5]` -> ("12", [4, 5]); `7` -> ("7", [None])."""
    match = _ID.match(text.strip())
    if not match:
        raise SlurmOutputError(f"not a SLURM job id: {text!r}")
    if match["range"]:
        return match["job"], list(expand_indices(match["range"]))
    return match["job"], [int(match["idx"])] if match["idx"] else [None]


def parse_squeue(stdout: str) -> list[IndexState]:
    """Rows of `squeue -h --states=all -o '%i|%T|%r'`."""
    rows: list[IndexState] = []
    for line in _lines(stdout):
        job_text, state, reason = _fields(line, 3, "squeue -o '%i|%T|%r'")
        rows.extend(_expand(job_text, state, reason))
    return rows


def parse_squeue_named(stdout: str) -> list[IndexState]:
    """Rows of `squeue -h --states=all -o '%i|%j|%T|%r'` (job names included, for re-attachment)."""
    rows: list[IndexState] = []
    for line in _lines(stdout):
        # A job name may itself contain "|": id is the first field, state and reason the last two.
        job_text, rest = line.split("|", 1) if "|" in line else (line, "")
        name, state, reason = _fields(rest, 3, "squeue -o '%i|%j|%T|%r'", from_right=True)
        rows.extend(_expand(job_text, state, reason, name=name))
    return rows


def parse_sacct(stdout: str) -> list[IndexState]:
    """Rows of `sacct -P -X -n -o JobID,JobName,State,ExitCode,Reason`."""
    rows: list[IndexState] = []
    for line in _lines(stdout):
        job_text, rest = line.split("|", 1) if "|" in line else (line, "")
        name, state, exit_text, reason = _fields(rest, 4, "sacct -P", from_right=True)
        code, signal = parse_exit_code(exit_text)
        for row in _expand(job_text, state, reason, name=name):
            rows.append(IndexState(row.job_id, row.index, row.state, row.reason, code, signal, name))
    return rows


def parse_scontrol(stdout: str) -> list[IndexState]:
    """Lines of `scontrol show job -o`: one per job, or per array index (the pending remainder as a range)."""
    rows: list[IndexState] = []
    for line in _lines(stdout):
        fields = scontrol_fields(line)
        state = _required(fields, "JobState", line)
        code, signal = parse_exit_code(fields.get("ExitCode", ""))
        job_id = fields.get("ArrayJobId") or _required(fields, "JobId", line)
        task = fields.get("ArrayTaskId")
        indices: list[int | None] = list(expand_indices(task)) if task and task != "N/A" else [None]
        for index in indices:
            rows.append(IndexState(job_id, index, state, fields.get("Reason", ""), code, signal, fields.get("JobName")))
    return rows


def scontrol_fields(line: str) -> dict[str, str]:
    """`Key=Value Key2=Value with spaces` -> dict. Values may hold spaces; keys never do."""
    starts = list(_SCONTROL_FIELD.finditer(line))
    fields: dict[str, str] = {}
    for here, after in zip(starts, [*starts[1:], None], strict=True):
        end = after.start() if after else len(line)
        fields[here.group(1)] = line[here.end() : end].strip()
    return fields


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """`3:0` -> (3, 0): exit status, then the signal that killed the job (`0:15` for SIGTERM)."""
    code, _, signal = text.strip().partition(":")
    if not code.isdigit():
        return None, None
    return int(code), int(signal) if signal.isdigit() else None


def _expand(job_text: str, state: str, reason: str, name: str | None = None) -> list[IndexState]:
    classify(state)  # an unknown state raises here, at the parser, not later in a comparison
    job_id, indices = split_job_id(job_text)
    return [IndexState(job_id, index, state.strip(), reason.strip(), name=name) for index in indices]


def _lines(stdout: str) -> list[str]:
    return [line.rstrip("\n") for line in stdout.splitlines() if line.strip()]


def _fields(line: str, count: int, what: str, *, from_right: bool = False) -> list[str]:
    parts = line.rsplit("|", count - 1) if from_right else line.split("|", count - 1)
    if len(parts) != count:
        raise SlurmOutputError(f"{what}: expected {count} '|'-separated fields, got {line!r}")
    return parts


def _required(fields: dict[str, str], key: str, line: str) -> str:
    if key not in fields:
        raise SlurmOutputError(f"scontrol show job -o: no {key}= in {line[:200]!r}")
    return fields[key]
