"""Submit-or-reattach: the only way corpusbridge puts work on a cluster.

Before submitting, look for the job by its deterministic name (squeue) and for completion markers in the
scratch dir. Indices that already succeeded are skipped, indices still queued or running are re-attached
to, and only the rest are submitted, after an `sbatch --test-only` pre-flight with the very same options.
So a retry resubmits only the failed indices, and a worker that died mid-wait never doubles the job.

A job corpusbridge itself cancels (a task marked failed, or cleared while deferred) gets a cancel marker
first: a later try never re-attaches to it, and an index it cancelled is resubmitted, not reported as failed.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corpusbridge.hpc import commands, parsing, script
from corpusbridge.hpc.parsing import ArrayTaskState
from corpusbridge.hpc.states import DEFAULT_POLICY, Phase, StatePolicy
from corpusbridge.hpc.transport import Transport, TransportError

SBATCH_TIMEOUT = 120.0
# `<scratch>/.corpusbridge/cancelled/<job id>`: written before corpusbridge's own scancel.
CANCEL_DIR = ".corpusbridge/cancelled"


@dataclass(frozen=True)
class JobSpec:
    """One unit of SLURM work: what to run, where, and how many indices."""

    command: str | Sequence[str]
    scratch: str
    job_name: str
    array_size: int | None = None  # None: a single (non-array) job
    parallelism: int | None = None
    options: Mapping[str, object] = field(default_factory=dict)
    container: script.Container | None = None

    @property
    def indices(self) -> list[int]:
        return list(range(self.array_size)) if self.array_size is not None else [0]

    @property
    def is_array(self) -> bool:
        return self.array_size is not None


@dataclass(frozen=True)
class Plan:
    """What submit_or_reattach found before acting."""

    done: dict[int, str]  # index -> id of the job that completed it
    attached: dict[str, list[int]]  # job id -> indices still queued/running in it
    todo: list[int]


@dataclass(frozen=True)
class Markers:
    """What the scratch dir says: indices that exited 0 (`done`), and jobs corpusbridge cancelled itself."""

    done: dict[int, str] = field(default_factory=dict)
    cancelled: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Submission:
    """Result of submit_or_reattach: the jobs to wait for, as `{job id: indices}` (index 0 for a single job)."""

    jobs: dict[str, list[int]]
    submitted: dict[str, list[int]]
    reattached: dict[str, list[int]]
    done: dict[int, str]
    preflight: str = ""


class SlurmSubmitError(RuntimeError):
    """sbatch refused the job (pre-flight or real submission); the message carries the scheduler's words."""


class SlurmPreflightRejected(SlurmSubmitError):
    """`sbatch --test-only` refused the job's options (a partition, time limit or account this cluster does not
    accept): the same options fail the same way, so retrying is pointless, except when a submit limit said no
    (`transient`: the queue is full now, not the options wrong)."""

    @property
    def transient(self) -> bool:
        return any(marker in str(self) for marker in _TRANSIENT_REFUSALS)


# How slurmctld words a refusal that passes once jobs leave the queue (QOS / association submit limits).
_TRANSIENT_REFUSALS = ("MaxSubmit", "submit limit", "temporarily unavailable")


def find_jobs(transport: Transport, name: str) -> list[ArrayTaskState]:
    """Every row squeue still knows for jobs named `name` (any state), one per array index (`squeue -r`).

    Only lines carrying our name are read: another user's odd line cannot stop a re-attach. One of ours that
    cannot be read raises SlurmOutputError naming it (guessing would submit indices twice).
    """
    result = transport.run(commands.squeue_by_name_argv([name]), timeout=SBATCH_TIMEOUT)
    if not result.ok:
        raise _scheduler_error("squeue -n", result.stderr)
    return [row for row in parsing.parse_squeue_named(result.stdout, name) if row.name == name]


# Prints "done <index> <job id>" per completion marker and "cancelled <job id>" per cancel marker, in one command.
_LIST_MARKERS = (
    'for f in "$1"/*; do [ -f "$f" ] && echo "done ${f##*/} $(cat -- "$f")"; done 2>/dev/null; '
    'for f in "$2"/*; do [ -f "$f" ] && echo "cancelled ${f##*/}"; done 2>/dev/null; exit 0'
)


def read_markers(transport: Transport, scratch: str) -> Markers:
    """Completion markers (indices that exited 0 in an earlier attempt) and cancel markers, in one command."""
    done_dir, cancel_dir = posixpath.join(scratch, script.MARKER_DIR), posixpath.join(scratch, CANCEL_DIR)
    result = transport.run(["sh", "-c", _LIST_MARKERS, "sh", done_dir, cancel_dir], timeout=SBATCH_TIMEOUT)
    if not result.ok:
        raise TransportError(f"listing markers in {scratch} failed: {result.stderr.strip()}")
    done: dict[int, str] = {}
    cancelled: set[str] = set()
    for line in result.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        name, _, job_id = rest.partition(" ")
        if kind == "done" and name.isdigit():
            done[int(name)] = job_id.strip()
        elif kind == "cancelled" and name.isdigit():
            cancelled.add(name)
    return Markers(done, frozenset(cancelled))


def completed_indices(transport: Transport, scratch: str) -> dict[int, str]:
    """`{index: job id}` for indices whose completion marker exists: they exited 0 in an earlier attempt."""
    return read_markers(transport, scratch).done


def plan(
    spec: JobSpec,
    existing: Sequence[ArrayTaskState],
    done: Mapping[int, str],
    *,
    cancelled: frozenset[str] = frozenset(),
    policy: StatePolicy = DEFAULT_POLICY,
) -> Plan:
    """Split the spec's indices into done / attached (queued, running or held) / todo.

    A job we cancelled ourselves is never re-attached to, even while scancel is still on its way.
    """
    attached: dict[str, list[int]] = {}
    for row in existing:
        index = row.index if row.index is not None else 0
        live = policy.classify(row.state).phase in (Phase.WAITING, Phase.ACTIVE)
        if index in done or not live or row.job_id in cancelled:
            continue
        attached.setdefault(row.job_id, []).append(index)
    busy = {i for indices in attached.values() for i in indices}
    todo = [i for i in spec.indices if i not in done and i not in busy]
    finished = {i: done[i] for i in spec.indices if i in done}
    return Plan(finished, {j: sorted(v) for j, v in attached.items()}, todo)


def upload_script(transport: Transport, spec: JobSpec) -> str:
    """Write the batch script into the scratch dir (kept there: it is what ran, for whoever debugs it)."""
    remote = posixpath.join(spec.scratch, script.SCRIPT_NAME)
    for folder in (script.LOG_DIR, script.MARKER_DIR):
        transport.makedirs(posixpath.join(spec.scratch, folder))
    text = script.batch_script(spec.command, spec.scratch, job_name=spec.job_name, container=spec.container)
    with tempfile.TemporaryDirectory(prefix="corpusbridge-script-") as tmp:
        local = Path(tmp) / "job.sh"
        local.write_text(text, encoding="utf-8")
        transport.put(local, remote)
    return remote


def sbatch(transport: Transport, spec: JobSpec, remote_script: str, indices: list[int], *, test_only: bool) -> str:
    """Run sbatch; return the job id, or the scheduler's verdict for --test-only."""
    output, error = script.log_paths(spec.scratch, array=spec.is_array)
    argv = commands.sbatch_argv(
        remote_script,
        job_name=spec.job_name,
        chdir=spec.scratch,
        output=output,
        error=error,
        indices=indices if spec.is_array else None,
        parallelism=spec.parallelism,
        options=spec.options,
        test_only=test_only,
    )
    result = transport.run(argv, timeout=SBATCH_TIMEOUT)
    what = "sbatch --test-only (pre-flight)" if test_only else "sbatch"
    if not result.ok:
        raise _scheduler_error(what, result.stderr or result.stdout, job_name=spec.job_name)
    return parsing.preflight_message(result.stderr) if test_only else parsing.parse_sbatch_parsable(result.stdout)


def submit_or_reattach(transport: Transport, spec: JobSpec, policy: StatePolicy = DEFAULT_POLICY) -> Submission:
    """Skip succeeded indices, re-attach to live ones, pre-flight then submit the rest (one job)."""
    # squeue first, markers second: an index finishing in between is then seen live, then done (never todo).
    existing = find_jobs(transport, spec.job_name)
    markers = read_markers(transport, spec.scratch)
    found = plan(spec, existing, markers.done, cancelled=markers.cancelled, policy=policy)
    submitted: dict[str, list[int]] = {}
    verdict = ""
    if found.todo:
        remote = upload_script(transport, spec)
        verdict = sbatch(transport, spec, remote, found.todo, test_only=True)
        submitted[sbatch(transport, spec, remote, found.todo, test_only=False)] = found.todo
    return Submission({**found.attached, **submitted}, submitted, found.attached, found.done, verdict)


def cancel(transport: Transport, job_ids: Sequence[str], *, scratch: str | None = None) -> None:
    """scancel; a job that already finished is not an error.

    With `scratch`, a cancel marker per job is written first, so that a new try of the same task neither
    re-attaches to these jobs nor reads their CANCELLED indices as failures (it resubmits them).
    """
    if not job_ids:
        return
    if scratch:
        folder = posixpath.join(scratch, CANCEL_DIR)
        mark = 'd="$1"; shift; mkdir -p -- "$d" && for j in "$@"; do : > "$d/$j"; done'
        marked = transport.run(["sh", "-c", mark, "sh", folder, *commands.checked_job_ids(job_ids)], timeout=60)
        if not marked.ok:
            raise TransportError(f"writing cancel markers in {folder} failed: {marked.stderr.strip()}")
    result = transport.run(commands.scancel_argv(job_ids), timeout=SBATCH_TIMEOUT)
    if not result.ok and "already completing or completed" not in result.stderr:
        raise _scheduler_error("scancel", result.stderr)


def _scheduler_error(what: str, stderr: str, job_name: str = "") -> Exception:
    message = stderr.strip() or "(no output)"
    if parsing.controller_unreachable(stderr):
        return TransportError(f"{what}: SLURM controller unreachable: {message}")
    label = f" for job {job_name}" if job_name else ""
    refusal = SlurmPreflightRejected if "--test-only" in what else SlurmSubmitError
    return refusal(f"{what}{label} failed: {message}")
