"""Free functions over SLURM's machine-readable output (`--parsable`, `-h -o '%i|%T|%r'`, `-P`, `show -o`).

Nothing here parses human-oriented tables. Array jobs come back one row per index; a pending remainder such as
`12_[3-7%2]` or its step form `12_[4-38:2%2]` is expanded so that every index has exactly one row. A list
SLURM cut short (`...` at 64 bytes, or `%i` at 31 characters without its closing bracket) cannot be expanded:
it raises TruncatedArrayList, which says to set SLURM_BITSTR_LEN=0 (commands.py does) or use `squeue -r`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from corpusbridge.hpc.states import classify, state_name

# What the SLURM clients print when slurmctld is down or unreachable (22.05 and later).
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Zero Bytes were transmitted or received",
    "Communication connection failure",
)
_ID = re.compile(r"^(?P<job>\d+)(?:_(?P<idx>\d+|\[(?P<range>[^\]]+)\]))?$")
_CUT_ID = re.compile(r"^(?P<job>\d+)_\[[^\]]*$")  # squeue's %i, cut at 31 characters: no closing bracket
_JOB_PREFIX = re.compile(r"^(?P<job>\d+)(?:[_|\s]|$)")
_SCONTROL_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9:/_]*)=")
_VERDICT = re.compile(r"Job \d+ to start at (?P<rest>.*)$")
_CANCELLED_BY = re.compile(r"^CANCELLED\s+by\s+(?P<who>\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class ArrayTaskState:
    """The SLURM state of one job, or of one task of an array job (index None for a plain job).

    `state` is the bare state name (`CANCELLED`); what sacct adds to it (`CANCELLED by 1000`) is kept in
    `cancelled_by`.
    """

    job_id: str
    index: int | None
    state: str
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None
    name: str | None = None
    cancelled_by: str | None = None

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.job_id, self.index)


class SlurmOutputError(ValueError):
    """Scheduler output that does not have the shape the format string asked for."""


class TruncatedArrayList(SlurmOutputError):
    """An array index list SLURM cut short: the indices after the cut are unknown, so none are guessed."""


@dataclass(frozen=True)
class UnreadableLine:
    """One line of scheduler output the parser could not read: reported as such, never as an unreachable controller."""

    command: str
    line: str
    error: str
    job_id: str | None = None  # when the line at least starts with a job id: that job is still listed
    truncated: bool = False  # SLURM cut an array index list short (see TruncatedArrayList)

    def __str__(self) -> str:
        return f"{self.command} printed a line corpusbridge cannot read: {self.line[:300]!r} ({self.error})"


@dataclass
class Parsed:
    """Rows read from an output, and the lines that could not be read (when the caller tolerates them)."""

    rows: list[ArrayTaskState]
    unreadable: list[UnreadableLine]


def parse_sbatch_parsable(stdout: str) -> str:
    """The job id from `sbatch --parsable` (`12` or `12;cluster`)."""
    line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = line.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SlurmOutputError(f"sbatch --parsable printed {stdout!r}, not a job id")
    return job_id


def preflight_message(stderr: str) -> str:
    """The scheduler's verdict from `sbatch --test-only` (stderr), without the test-only job's own id.

    The verdict is `sbatch: Job 7 to start at <when> using ...`; lines such as `sbatch:   Preempts: 17,18` may
    follow it, and the `7` is a job id the test consumed, not the job that will be submitted.
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        if match := _VERDICT.search(line):
            return "would start at " + match["rest"]
    return lines[-1] if lines else "(sbatch --test-only printed nothing)"


def controller_unreachable(stderr: str) -> bool:
    """True when a SLURM client failed because it could not reach slurmctld: never a statement about a job."""
    return any(marker in stderr for marker in _UNREACHABLE)


def expand_indices(spec: str) -> list[int]:
    """`1-3%2` -> [1, 2, 3]; `1,4,6-7` -> [1, 4, 6, 7]; `2-8:2` -> [2, 4, 6, 8] (the `%K` throttle is dropped)."""
    body = spec.split("%", 1)[0]
    if body.endswith("..."):
        raise TruncatedArrayList(
            f"array index list {spec!r} was cut by SLURM (64-byte limit): set SLURM_BITSTR_LEN=0 in the "
            "environment of the command, or use `squeue -r`"
        )
    indices: list[int] = []
    for part in body.split(","):
        indices.extend(_index_range(part, spec))
    return indices


def _index_range(part: str, spec: str) -> range:
    bounds, _, step = part.partition(":")
    low, _, high = bounds.partition("-")
    if not low.isdigit() or (high and not high.isdigit()) or (step and not (step.isdigit() and int(step) > 0)):
        raise SlurmOutputError(f"not an array index list: {spec!r}")
    return range(int(low), int(high or low) + 1, int(step or 1))


def split_job_id(text: str) -> tuple[str, list[int | None]]:
    """`12_3` -> ("12", [3]); `12_[4-5]` -> ("12", [4, 5]); `7` -> ("7", [None])."""
    match = _ID.match(text.strip())
    if not match:
        if _CUT_ID.match(text.strip()):
            raise TruncatedArrayList(
                f"job id {text.strip()!r} was cut by squeue's %i (31 characters): use `squeue -r` or set "
                "SLURM_BITSTR_LEN=0 in the environment of the command"
            )
        raise SlurmOutputError(f"not a SLURM job id: {text!r}")
    if match["range"]:
        return match["job"], list(expand_indices(match["range"]))
    return match["job"], [int(match["idx"])] if match["idx"] else [None]


def parse_squeue(stdout: str) -> list[ArrayTaskState]:
    """Rows of `squeue -h --states=all -o '%i|%T|%r'`; raises on the first line it cannot read."""
    return _per_line(stdout, SQUEUE_WHAT, _squeue_row, strict=True).rows


def read_squeue(stdout: str) -> Parsed:
    """Rows of `squeue -h --states=all -o '%i|%T|%r'`, with the lines it cannot read set aside."""
    return _per_line(stdout, SQUEUE_WHAT, _squeue_row)


def parse_squeue_named(stdout: str, name: str | None = None) -> list[ArrayTaskState]:
    """Rows of `squeue -h --states=all -o '%i|%j|%T|%r'` (job names included, for re-attachment).

    With `name`, only that job's lines are read: another user's line that cannot be read is not our problem.
    """
    return _per_line(stdout, SQUEUE_NAMED_WHAT, _named_row, _named(name) if name else None, strict=True).rows


def parse_sacct(stdout: str) -> list[ArrayTaskState]:
    """Rows of `sacct -P -X -n -o JobID,JobName,State,ExitCode,Reason`."""
    return _per_line(stdout, SACCT_WHAT, _sacct_row, strict=True).rows


def read_sacct(stdout: str) -> Parsed:
    return _per_line(stdout, SACCT_WHAT, _sacct_row)


SQUEUE_WHAT = "squeue -o '%i|%T|%r'"
SQUEUE_NAMED_WHAT = "squeue -o '%i|%j|%T|%r'"
SACCT_WHAT = "sacct -P"
SCONTROL_WHAT = "scontrol show job -o"


def _squeue_row(line: str) -> list[ArrayTaskState]:
    job_text, state, reason = _fields(line, 3, SQUEUE_WHAT)
    return _expand(job_text, state, reason)


def _named_row(line: str) -> list[ArrayTaskState]:
    # A job name may itself contain "|": id is the first field, state and reason the last two.
    job_text, rest = line.split("|", 1) if "|" in line else (line, "")
    name, state, reason = _fields(rest, 3, SQUEUE_NAMED_WHAT, from_right=True)
    return _expand(job_text, state, reason, name=name)


def _named(name: str) -> Callable[[str], bool]:
    def keep(line: str) -> bool:
        parts = line.split("|", 1)[-1].rsplit("|", 2)
        return len(parts) == 3 and parts[0] == name

    return keep


def _sacct_row(line: str) -> list[ArrayTaskState]:
    job_text, rest = line.split("|", 1) if "|" in line else (line, "")
    name, state, exit_text, reason = _fields(rest, 4, SACCT_WHAT, from_right=True)
    code, signal = parse_exit_code(exit_text)
    return [
        ArrayTaskState(row.job_id, row.index, row.state, row.reason, code, signal, name, row.cancelled_by)
        for row in _expand(job_text, state, reason, name=name)
    ]


def parse_scontrol(stdout: str) -> list[ArrayTaskState]:
    """Lines of `scontrol show job -o`: one per job, or per array index (the pending remainder as a range)."""
    return _per_line(stdout, SCONTROL_WHAT, _scontrol_row, strict=True).rows


def read_scontrol(stdout: str) -> Parsed:
    return _per_line(stdout, SCONTROL_WHAT, _scontrol_row)


def _scontrol_row(line: str) -> list[ArrayTaskState]:
    fields = scontrol_fields(line)
    state = _required(fields, "JobState", line)
    classify(state)
    code, signal = parse_exit_code(fields.get("ExitCode", ""))
    job_id = fields.get("ArrayJobId") or _required(fields, "JobId", line)
    task = fields.get("ArrayTaskId")
    indices: list[int | None] = list(expand_indices(task)) if task and task != "N/A" else [None]
    reason, name = fields.get("Reason", ""), fields.get("JobName")
    return [ArrayTaskState(job_id, index, state_name(state), reason, code, signal, name) for index in indices]


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


def _expand(job_text: str, state: str, reason: str, name: str | None = None) -> list[ArrayTaskState]:
    classify(state)  # an unknown state raises here, at the parser, not later in a comparison
    job_id, indices = split_job_id(job_text)
    who = _CANCELLED_BY.match(state.strip())
    by = who["who"] if who else None
    bare = state_name(state)
    return [ArrayTaskState(job_id, index, bare, reason.strip(), name=name, cancelled_by=by) for index in indices]


def _per_line(
    stdout: str,
    what: str,
    parse: Callable[[str], list[ArrayTaskState]],
    keep: Callable[[str], bool] | None = None,
    *,
    strict: bool = False,
) -> Parsed:
    """Parse line by line; an unreadable line is set aside (or, `strict`, raised with the command and the line)."""
    parsed = Parsed([], [])
    for line in _lines(stdout):
        if keep is not None and not keep(line):
            continue
        try:
            parsed.rows.extend(parse(line))
        except ValueError as exc:  # SlurmOutputError, UnknownSlurmState: the line, not the controller
            prefix = _JOB_PREFIX.match(line.split("JobId=", 1)[-1] if what == SCONTROL_WHAT else line)
            job = prefix["job"] if prefix else None
            bad = UnreadableLine(what, line, str(exc), job, isinstance(exc, TruncatedArrayList))
            if strict:
                raise type(exc)(str(bad)) from exc
            parsed.unreadable.append(bad)
    return parsed


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
