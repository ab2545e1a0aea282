"""Watching submitted jobs: one squeue for many jobs, exit codes once they end, log tails by offset.

A failed squeue (transport down, controller unreachable) yields a PollResult with `unreachable` set and
no rows: the caller backs off and asks again. It is never read as "the job finished". A line squeue printed
but the parser cannot read is reported as such (`unreadable`), never as an unreachable controller.
"""

from __future__ import annotations

import base64
import dataclasses
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corpusbridge.hpc import commands, parsing
from corpusbridge.hpc.events import LOST, IndexOutcome
from corpusbridge.hpc.parsing import ArrayTaskState
from corpusbridge.hpc.states import DEFAULT_POLICY, Phase, StatePolicy
from corpusbridge.hpc.transport import Transport, TransportError

QUERY_TIMEOUT = 60.0
LOG_CHUNK = 65536


@dataclass(frozen=True)
class PollResult:
    """One squeue: its rows, the lines it printed that could not be read, or why it could not be asked at all."""

    rows: list[ArrayTaskState]
    unreachable: str | None = None
    unreadable: list[parsing.UnreadableLine] = field(default_factory=list)

    @property
    def listed_jobs(self) -> set[str]:
        """Jobs squeue still lists, readable or not (an unreadable line is not a vanished job)."""
        return {row.job_id for row in self.rows} | {u.job_id for u in self.unreadable if u.job_id}


def poll(transport: Transport, job_ids: Iterable[str]) -> PollResult:
    """One squeue for all `job_ids`; jobs squeue no longer knows are simply absent from the rows."""
    ids = sorted(set(job_ids))
    if not ids:
        return PollResult([])
    try:
        result = transport.run(commands.squeue_argv(ids), timeout=QUERY_TIMEOUT)
    except TransportError as exc:
        return PollResult([], f"transport failed: {exc}")
    if result.ok:
        parsed = parsing.read_squeue(result.stdout)
        return PollResult(parsed.rows, unreadable=parsed.unreadable)
    if "Invalid job id" in result.stderr and len(ids) == 1:
        return PollResult([])  # squeue -j with ONE unknown id fails; with several it just omits it
    return PollResult([], result.stderr.strip() or f"squeue exited {result.returncode}")


def exit_details(transport: Transport, job_ids: Sequence[str], *, use_sacct: bool) -> list[ArrayTaskState]:
    """Exit codes for finished jobs: the controller's word (scontrol) first, accounting (sacct) for the rest.

    slurmctld hands a job's end to slurmdbd through an asynchronous queue, so for a second or two after squeue
    shows an index FAILED, sacct still prints the array's unsplit record (`<job>|allocation|PENDING|0:0`) and
    no row for the index at all. scontrol is therefore asked first (one remote loop, as it takes one job per
    call); sacct fills in only what the controller no longer knows (jobs older than MinJobAge), and adds who
    cancelled an index when both agree it was cancelled. A job known to neither just has no rows.
    """
    if not job_ids:
        return []
    sacct_rows: list[ArrayTaskState] | None = None
    if use_sacct:
        result = transport.run(commands.sacct_argv(job_ids), timeout=QUERY_TIMEOUT)
        sacct_rows = parsing.read_sacct(result.stdout).rows if result.ok else None
    try:
        controller = _scontrol_details(transport, job_ids)
    except TransportError:
        if sacct_rows is None:
            raise
        return sacct_rows  # the controller is down; accounting still answers (possibly a moment behind)
    return controller if sacct_rows is None else merge_accounting(controller, sacct_rows)


def _scontrol_details(transport: Transport, job_ids: Sequence[str]) -> list[ArrayTaskState]:
    one = shlex.join(commands.scontrol_show_job_argv(job_ids[0])[:-1])
    loop = f'for j in "$@"; do {one} "$j" 2>&1 || true; done'
    argv = ["sh", "-c", loop, "sh", *commands.checked_job_ids(job_ids)]
    result = transport.run(argv, timeout=QUERY_TIMEOUT)
    if parsing.controller_unreachable(result.stdout):
        raise TransportError(f"scontrol show job: {result.stdout.strip()[-300:]}")
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("JobId=")]
    # Only finished jobs are asked about, so a pending remainder (the one line that could be cut) is not ours.
    return parsing.read_scontrol("\n".join(lines)).rows


def merge_accounting(controller: list[ArrayTaskState], accounting: list[ArrayTaskState]) -> list[ArrayTaskState]:
    """The controller's rows, plus sacct's rows for the indices the controller no longer lists.

    A row the controller still has is never overridden by sacct, which may lag (see `exit_details`); sacct only
    adds `cancelled_by` to a row in the same state. An index the controller purged (MinJobAge) comes from sacct;
    sacct's record without an index for a job the controller knows is the array's unsplit record: left out."""
    known_jobs = {row.job_id for row in controller}
    known_keys = {row.key for row in controller}
    by_key = {row.key: row for row in accounting}
    merged = []
    for row in controller:
        account = by_key.get(row.key)
        if account is not None and account.state == row.state and account.cancelled_by and not row.cancelled_by:
            row = dataclasses.replace(row, cancelled_by=account.cancelled_by)
        merged.append(row)
    return merged + [
        row for row in accounting if row.key not in known_keys and not (row.index is None and row.job_id in known_jobs)
    ]


def sacct_available(transport: Transport) -> bool:
    """False on clusters without slurmdbd (`Slurm accounting storage is disabled`)."""
    try:
        return transport.run(["sacct", "-n", "-X", "-j", "1"], timeout=QUERY_TIMEOUT).ok
    except TransportError:
        return False


# A job squeue stopped listing is taken as finished (and asked about once, with scontrol/sacct) after this many
# clean ticks without it: once could be a job between array records, twice is gone.
VANISHED_TICKS = 2


@dataclass
class JobTracker:
    """Last-seen state per (job, index) for the indices a task waits on, and when that wait is over.

    `expected` maps a job id to its indices, or to None for a job submitted elsewhere (its indices are
    learnt from squeue). Finished indices leave squeue after MinJobAge even while siblings still run, so
    the last state seen is remembered rather than re-read. `policy` says what site-dependent states mean.
    """

    expected: dict[str, list[int] | None]
    policy: StatePolicy = DEFAULT_POLICY
    seen: dict[tuple[str, int], ArrayTaskState] = field(default_factory=dict)
    absent_ticks: dict[str, int] = field(default_factory=dict)

    def observe(self, result: PollResult) -> list[ArrayTaskState]:
        """Record one clean squeue: states, and which of our jobs it no longer lists. Returns changed rows."""
        listed = result.listed_jobs
        for job in self.expected:
            self.absent_ticks[job] = 0 if job in listed else self.absent_ticks.get(job, 0) + 1
        return self.update(result.rows)

    def update(self, rows: Iterable[ArrayTaskState]) -> list[ArrayTaskState]:
        """Record rows for our jobs; return those whose state changed."""
        changed: list[ArrayTaskState] = []
        for row in rows:
            key = (row.job_id, row.index if row.index is not None else 0)
            if not self._wanted(*key):
                continue
            previous = self.seen.get(key)
            if previous is None or (previous.state, previous.exit_code) != (row.state, row.exit_code):
                changed.append(row)
            self.seen[key] = row
        return changed

    def settled(self) -> bool:
        """True when every index is final, or belongs to a job squeue has stopped listing (then ask scontrol)."""
        vanished = {job for job, ticks in self.absent_ticks.items() if ticks >= VANISHED_TICKS}
        return all(job in vanished for job, _ in self.waiting())

    def _wanted(self, job: str, index: int) -> bool:
        if job not in self.expected:
            return False
        indices = self.expected[job]
        return indices is None or index in indices

    def keys(self) -> list[tuple[str, int]]:
        """Every (job, index) waited on: the expected ones, or those seen for jobs of unknown shape."""
        keys = {(job, i) for job, indices in self.expected.items() if indices is not None for i in indices}
        keys |= {k for k in self.seen if self.expected.get(k[0]) is None}
        unseen_open = {(job, 0) for job, ind in self.expected.items() if ind is None and not self._seen_job(job)}
        return sorted(keys | unseen_open)

    def _seen_job(self, job: str) -> bool:
        return any(k[0] == job for k in self.seen)

    def _final(self, row: ArrayTaskState) -> bool:
        return self.policy.classify(row.state).terminal

    def waiting(self) -> list[tuple[str, int]]:
        """Indices without a final state yet (by this cluster's state policy)."""
        return [k for k in self.keys() if k not in self.seen or not self._final(self.seen[k])]

    def active(self) -> list[tuple[str, int]]:
        return [k for k, row in self.seen.items() if self.policy.classify(row.state).phase is Phase.ACTIVE]

    def outcomes(self) -> list[IndexOutcome]:
        out = []
        for job, index in self.keys():
            row = self.seen.get((job, index))
            if row is None or not self._final(row):
                out.append(IndexOutcome(index, job, LOST, reason="no longer known to the controller"))
            else:
                out.append(IndexOutcome(index, job, row.state, row.exit_code, row.signal, row.reason, row.cancelled_by))
        return sorted(out, key=lambda o: (o.index, o.job_id))


def tail_logs(transport: Transport, offsets: Mapping[str, int], limit: int = LOG_CHUNK) -> dict[str, tuple[int, str]]:
    """New bytes of each log file since its offset, in ONE remote command: `{path: (new offset, text)}`.

    Files that do not exist yet are left out. Text is decoded leniently (a chunk may cut a character).
    """
    paths = sorted(offsets)
    if not paths:
        return {}
    parts = []
    for path in paths:
        q = shlex.quote(path)
        parts.append(
            f"if [ -f {q} ]; then printf 'ok '; tail -c +{offsets[path] + 1} -- {q} | head -c {limit} | base64 -w0;"
            " else printf 'missing'; fi; echo"
        )
    result = transport.run(["sh", "-c", "\n".join(parts)], timeout=QUERY_TIMEOUT)
    if not result.ok:
        raise TransportError(f"reading logs failed: {result.stderr.strip()}")
    chunks: dict[str, tuple[int, str]] = {}
    for path, line in zip(paths, result.stdout.splitlines(), strict=False):
        if line.startswith("ok"):
            data = base64.b64decode(line[3:])
            chunks[path] = (offsets[path] + len(data), data.decode("utf-8", errors="replace"))
    return chunks


def file_tail(transport: Transport, path: str, nbytes: int = 2000) -> str:
    """The last `nbytes` of a remote file ('' when it does not exist): the stderr shown on failure."""
    try:
        result = transport.run(["tail", "-c", str(nbytes), "--", path], timeout=QUERY_TIMEOUT)
    except TransportError:  # a failure message must not be lost because its decoration could not be fetched
        return ""
    return result.stdout if result.ok else ""
