"""Watching submitted jobs: one squeue for many jobs, exit codes once they end, log tails by offset.

A failed squeue (transport down, controller unreachable) yields a PollResult with `unreachable` set and
no rows: the caller backs off and asks again. It is never read as "the job finished".
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corpusbridge.hpc import commands, parsing
from corpusbridge.hpc.parsing import IndexState
from corpusbridge.hpc.states import STATES, Phase, classify
from corpusbridge.hpc.transport import Transport, TransportError

QUERY_TIMEOUT = 60.0
LOG_CHUNK = 65536


@dataclass(frozen=True)
class PollResult:
    rows: list[IndexState]
    unreachable: str | None = None


@dataclass(frozen=True)
class IndexOutcome:
    """The final word on one array index."""

    index: int
    job_id: str
    state: str
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state in STATES and classify(self.state).phase is Phase.SUCCEEDED

    def describe(self) -> str:
        code = f" exit {self.exit_code}" if self.exit_code is not None else ""
        sig = f" signal {self.signal}" if self.signal else ""
        meaning = classify(self.state).meaning if self.state in STATES else "no longer known to the controller"
        return f"index {self.index} (job {self.job_id}): {self.state}{code}{sig} — {meaning}"

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "job_id": self.job_id,
            "state": self.state,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "reason": self.reason,
        }


# LOST is ours, not SLURM's: the controller no longer knows an index it never reported finished.
LOST = "LOST"


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
        return PollResult(parsing.parse_squeue(result.stdout))
    if "Invalid job id" in result.stderr and len(ids) == 1:
        return PollResult([])  # squeue -j with ONE unknown id fails; with several it just omits it
    return PollResult([], result.stderr.strip() or f"squeue exited {result.returncode}")


def exit_details(transport: Transport, job_ids: Sequence[str], *, use_sacct: bool) -> list[IndexState]:
    """Exit codes for finished jobs in ONE remote command: sacct when accounting exists, else scontrol per job.

    scontrol takes one job per call, so the calls run in a remote loop; a job the controller no longer knows
    just has no rows.
    """
    if not job_ids:
        return []
    if use_sacct:
        result = transport.run(commands.sacct_argv(job_ids), timeout=QUERY_TIMEOUT)
        if result.ok:
            return parsing.parse_sacct(result.stdout)
    one = shlex.join(commands.scontrol_show_job_argv(job_ids[0])[:-1])
    loop = f'for j in "$@"; do {one} "$j" 2>&1 || true; done'
    argv = ["sh", "-c", loop, "sh", *commands.checked_job_ids(job_ids)]
    result = transport.run(argv, timeout=QUERY_TIMEOUT)
    if parsing.controller_unreachable(result.stdout):
        raise TransportError(f"scontrol show job: {result.stdout.strip()[-300:]}")
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("JobId=")]
    return parsing.parse_scontrol("\n".join(lines))


def sacct_available(transport: Transport) -> bool:
    """False on clusters without slurmdbd (`Slurm accounting storage is disabled`)."""
    try:
        return transport.run(["sacct", "-n", "-X", "-j", "1"], timeout=QUERY_TIMEOUT).ok
    except TransportError:
        return False


@dataclass
class JobTracker:
    """Last-seen state per (job, index) for the indices a task waits on.

    `expected` maps a job id to its indices, or to None for a job submitted elsewhere (its indices are
    learnt from squeue). Finished indices leave squeue after MinJobAge even while siblings still run, so
    the last state seen is remembered rather than re-read.
    """

    expected: dict[str, list[int] | None]
    seen: dict[tuple[str, int], IndexState] = field(default_factory=dict)

    def update(self, rows: Iterable[IndexState]) -> list[IndexState]:
        """Record rows for our jobs; return those whose state changed."""
        changed: list[IndexState] = []
        for row in rows:
            key = (row.job_id, row.index if row.index is not None else 0)
            if not self._wanted(*key):
                continue
            previous = self.seen.get(key)
            if previous is None or (previous.state, previous.exit_code) != (row.state, row.exit_code):
                changed.append(row)
            self.seen[key] = row
        return changed

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

    def waiting(self) -> list[tuple[str, int]]:
        """Indices without a terminal state yet."""
        return [k for k in self.keys() if k not in self.seen or not classify(self.seen[k].state).terminal]

    def active(self) -> list[tuple[str, int]]:
        return [k for k, row in self.seen.items() if classify(row.state).phase is Phase.ACTIVE]

    def outcomes(self) -> list[IndexOutcome]:
        out = []
        for job, index in self.keys():
            row = self.seen.get((job, index))
            if row is None or not classify(row.state).terminal:
                out.append(IndexOutcome(index, job, LOST, reason="no longer known to the controller"))
            else:
                out.append(IndexOutcome(index, job, row.state, row.exit_code, row.signal, row.reason))
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
