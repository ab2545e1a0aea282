"""The SLURM compute backend without Airflow: stage a batch, one array index per shard, wait, fetch verified results.

`payload_argv` is the command of one array index, shared with the DAG's SlurmOperator. It is an argument list: the
only shell in it is a constant that appends `--index "$SLURM_ARRAY_TASK_ID"`, and every path reaches it as a
positional argument, so nothing from a caller is ever parsed by a shell.

`run_slurm` is the same round trip for `corpusbridge run --backend slurm`: stage the manifest, its shards and the
dictionary artifact into a scratch folder named after the work (a rerun finds it, and the job: submit-or-reattach
never submits twice), submit the array with a throttle, poll squeue until every index ended, then fetch and verify
`concepts-I`, `vectors-I` and `result-I.json`. A failed index is reported with its state and stderr tail.
"""

from __future__ import annotations

import errno
import logging
import posixpath
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corpusbridge.compute.outputs import (
    ComputeSummary,
    checked_result,
    failure_message,
    result_files,
    verified_result,
)
from corpusbridge.compute.payload import extract_argv
from corpusbridge.export.manifest import ShardEntry, read_manifest, shard_path
from corpusbridge.extract.dictionary import read_version
from corpusbridge.extract.results import job_name
from corpusbridge.hashing import file_sha256
from corpusbridge.hpc import jobs, monitor, naming, script, staging
from corpusbridge.hpc import outcome as outcome_rules
from corpusbridge.hpc.cluster import ClusterSettings
from corpusbridge.hpc.events import EventStatus, SlurmEvent
from corpusbridge.hpc.transport import Transport

log = logging.getLogger(__name__)

# `sh -c SCRIPT sh PROGRAM ARGS...`: runs PROGRAM ARGS with this array task's index appended; fails clearly outside
# an array task instead of running shard 0 by accident.
WITH_ARRAY_INDEX = 'exec "$@" --index "${SLURM_ARRAY_TASK_ID:?is unset: run this as a SLURM array task}"'
BATCH_FOLDER = "batch"
OUT_FOLDER = "out"


def payload_argv(
    manifest: str,
    dictionary: str,
    out_dir: str,
    *,
    embeddings: bool,
    python: str = "python3",
) -> list[str]:
    """The argv of one array index: the payload on shard $SLURM_ARRAY_TASK_ID.

    A container is the batch script's (`JobSpec.container`, the SlurmOperator's `container=`): it wraps this argv,
    binds the scratch dir and passes the image's digest in.
    """
    argv = extract_argv(python, manifest, dictionary, out_dir, embeddings=embeddings)
    return ["sh", "-c", WITH_ARRAY_INDEX, "sh", *argv]


def batch_files(manifest: Path) -> list[Path]:
    """What a batch stages: its manifest and every shard it lists (they go into one folder, `batch/`)."""
    loaded = read_manifest(manifest)
    return [manifest, *(shard_path(manifest, entry) for entry in loaded.shards)]


def run_slurm_on(
    settings: ClusterSettings,
    manifest: Path,
    dictionary: Path,
    out_dir: Path,
    *,
    options: Mapping[str, object] | None = None,
    **kwargs: Any,
) -> ComputeSummary:
    """run_slurm over an OpenSSH transport to the cluster `settings` describe (what `corpusbridge run` uses)."""
    from corpusbridge.hpc.openssh import OpenSSHTransport

    kwargs.setdefault("container_runtime", settings.container_runtime or "apptainer")
    merged = settings.sbatch_defaults() | dict(options or {})
    transport = OpenSSHTransport(settings)  # nothing to close: its ssh master is shared and times out by itself
    return run_slurm(transport, settings.scratch_root, manifest, dictionary, out_dir, options=merged, **kwargs)


def run_slurm(
    transport: Transport,
    scratch_root: str,
    manifest: Path,
    dictionary: Path,
    out_dir: Path,
    *,
    embeddings: bool = True,
    python: str = "python3",
    container: str | None = None,
    container_runtime: str = "apptainer",
    parallelism: int | None = None,
    options: Mapping[str, object] | None = None,
    poll_seconds: float = 5.0,
    label: str = "",
) -> ComputeSummary:
    """Run the payload on every shard of `manifest` as one SLURM array; results land verified in `out_dir`.

    The job and its scratch folder are named after the work (batch, dictionary, settings, `label`): a rerun of the
    same work re-attaches to its job or finds its indices done instead of submitting again. Give `label` to keep
    runs of the same work apart (tests do); leave it empty to share completed work between runs.
    """
    started = time.monotonic()
    manifest, dictionary, out_dir = Path(manifest).absolute(), Path(dictionary).absolute(), Path(out_dir).absolute()
    loaded = read_manifest(manifest)
    version = read_version(dictionary)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = sorted(loaded.shards, key=lambda s: s.index)
    summary = ComputeSummary(shards=len(shards), out_dir=str(out_dir), backend="slurm")
    pending = [s for s in shards if verified_result(out_dir, s, version, embeddings) is None]
    summary.skipped = len(shards) - len(pending)
    if pending:
        container_spec = (container, container_runtime) if container else None
        spec = _job_spec(scratch_root, manifest, dictionary, version, embeddings, python, container_spec,
                         parallelism, dict(options or {}), len(shards), label)  # fmt: skip
        _stage(transport, spec.scratch, manifest, dictionary)
        mark_verified_here(transport, spec.scratch, [s.index for s in shards if s not in pending])
        submission = jobs.submit_or_reattach(transport, spec)
        summary.job_ids = sorted(submission.jobs)
        summary.submitted = sorted(i for indices in submission.submitted.values() for i in indices)
        for job_id, indices in submission.submitted.items():
            log.info("compute slurm: submitted SLURM job %s for indices %s (pre-flight: %s)", job_id, indices,
                     submission.preflight or "-")  # fmt: skip
        for job_id, indices in submission.reattached.items():
            log.info("compute slurm: re-attached to SLURM job %s (indices %s), not resubmitting", job_id, indices)
        pending_indices = {s.index for s in pending}
        done_before = {i: job for i, job in submission.done.items() if i in pending_indices}
        if done_before:
            log.info("compute slurm: indices %s already done on scratch (by SLURM job(s) %s): fetching their results",
                     sorted(done_before), ", ".join(sorted(set(done_before.values()))))  # fmt: skip
        log.info("compute slurm: job name %s, scratch %s", spec.job_name, spec.scratch)
        try:
            failed = wait_for_indices(transport, spec.scratch, submission, poll_seconds)
        except KeyboardInterrupt:  # Ctrl-C or a stop signal: this process goes, the cluster's job does not
            jobs_text = ", ".join(summary.job_ids) or "-"
            log.warning("compute slurm: stopped waiting; SLURM job(s) %s keep running. Run again with the same "
                        "options to re-attach to them, or cancel them: scancel %s", jobs_text, jobs_text)  # fmt: skip
            raise
        _fetch(transport, posixpath.join(spec.scratch, OUT_FOLDER), [s.index for s in pending], embeddings, out_dir)
        summary.failed.update(failed)
        summary.failed.update(_unverified(transport, spec.scratch, pending, version, embeddings, out_dir, failed))
    for shard in shards:
        entry = verified_result(out_dir, shard, version, embeddings)
        if entry is not None:
            summary.docs_processed += entry.input_rows
        elif shard.index not in summary.failed:
            summary.failed[shard.index] = "the fetched result does not verify (missing or damaged files on the cluster)"
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _job_spec(
    scratch_root: str,
    manifest: Path,
    dictionary: Path,
    version: str,
    embeddings: bool,
    python: str,
    container: tuple[str, str] | None,
    parallelism: int | None,
    options: dict[str, object],
    shards: int,
    label: str,
) -> jobs.JobSpec:
    """A job named after the work (batch, dictionary, settings): the same work finds the same job and scratch."""
    loaded = read_manifest(manifest)
    work = {"manifest": file_sha256(manifest), "dictionary": version, "embeddings": embeddings, "python": python,
            "container": container, "options": options, "label": label}  # fmt: skip
    key = naming.WorkKey("corpusbridge", "compute", loaded.batch_id, -1, naming.input_hash(work))
    scratch = naming.scratch_dir(scratch_root, key)
    command = payload_argv(
        posixpath.join(scratch, BATCH_FOLDER, manifest.name),
        posixpath.join(scratch, dictionary.name),
        posixpath.join(scratch, OUT_FOLDER),
        embeddings=embeddings,
        python=python,
    )
    # The batch script runs the image, as for the DAG's SlurmOperator: it binds the scratch dir (everything the
    # payload reads and writes is under it) and hands the image's digest in for the results' provenance.
    image = script.Container(container[0], container[1]) if container else None
    return jobs.JobSpec(command, scratch, naming.job_name(key), shards, parallelism, options, container=image)


def _stage(transport: Transport, scratch: str, manifest: Path, dictionary: Path) -> None:
    """Manifest + shards into `<scratch>/batch`, the artifact into `<scratch>/<its name>`; verified, resumable."""
    staging.stage_in(transport, batch_files(manifest), posixpath.join(scratch, BATCH_FOLDER))
    staging.stage_in(transport, [dictionary], scratch)
    transport.makedirs(posixpath.join(scratch, OUT_FOLDER))


def wait_for_indices(
    transport: Transport, scratch: str, submission: jobs.Submission, poll_seconds: float
) -> dict[int, str]:
    """Poll until every index of our jobs ended (or its job left squeue); the failed ones with their reason.

    The same tracker and verdict rules as the SlurmOperator's trigger (`hpc.monitor`, `hpc.outcome`): a job squeue
    stopped listing is asked about once, an index that aged out with its completion marker counts as done.
    """
    if not submission.jobs:
        return {}
    tracker = monitor.JobTracker({job: list(indices) for job, indices in submission.jobs.items()})
    while True:
        polled = monitor.poll(transport, submission.jobs)
        if polled.unreachable:
            log.warning("compute slurm: scheduler unreachable, asking again: %s", polled.unreachable)
        else:
            for row in tracker.observe(polled):
                log.info("compute slurm: job %s index %s: %s", row.job_id, row.index, row.state)
            if tracker.settled():
                break
        time.sleep(poll_seconds)
    ended = sorted(submission.jobs)
    tracker.update(monitor.exit_details(transport, ended, use_sacct=monitor.sacct_available(transport)))
    event = SlurmEvent(EventStatus.DONE, dict(tracker.expected), tuple(tracker.outcomes()), scratch,
                       done=dict(submission.done))  # fmt: skip
    failed: dict[int, str] = {}
    for outcome in outcome_rules.resolve(transport, event).failed:
        out, err = (
            monitor.file_tail(transport, script.log_file(scratch, outcome.job_id, outcome.index, stream))
            for stream in ("out", "err")
        )
        failed[outcome.index] = failure_message(outcome.describe(), out, err)
    return failed


def _fetch(transport: Transport, remote_out: str, indices: list[int], embeddings: bool, out_dir: Path) -> None:
    """Bring back every output of `indices` that exists, each verified by sha256; the caller checks completeness."""
    names = [(*result_files(i, embeddings), job_name(i)) for i in indices]  # job-I.json: where it ran, optional
    patterns = [posixpath.join(remote_out, name) for files in names for name in files]
    try:
        staging.fetch(transport, patterns, out_dir, require_match=False, within=remote_out)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left on device" not in str(exc):
            raise
        raise ComputeDiskFull(
            f"compute slurm: no space left on device in {out_dir} while fetching the results; every file is "
            "written under a temporary name first, so what is there verified and nothing is half-written: free "
            "space there and run again (the results still on the cluster are fetched, nothing is computed again)"
        ) from exc


class ComputeDiskFull(OSError):
    """The results folder's filesystem filled up during the fetch; the files already fetched are intact."""


# Writes a completion marker for each index given that has none: `workstation` stands where a job id would be.
_MARK = 'd="$1"; shift; mkdir -p -- "$d" && for i in "$@"; do [ -e "$d/$i" ] || echo workstation > "$d/$i"; done'


def mark_verified_here(transport: Transport, scratch: str, indices: list[int]) -> None:
    """Completion markers for the indices whose verified result is already on the workstation.

    Without them a scratch folder that lost its markers (purged, or a new scratch root) would have the array
    submitted whole, computing again shards that need nothing. A marker whose outputs are not on the cluster is
    harmless: the fetch then finds nothing for that index, and the workstation's copy is the one that counts.
    """
    if not indices:
        return
    result = transport.run(["sh", "-c", _MARK, "sh", posixpath.join(scratch, script.MARKER_DIR), *map(str, indices)])
    if not result.ok:
        raise OSError(f"writing completion markers in {scratch} failed: {result.stderr.strip()}")


def _unverified(
    transport: Transport,
    scratch: str,
    pending: list[ShardEntry],
    version: str,
    embeddings: bool,
    out_dir: Path,
    failed: Mapping[int, str],
) -> dict[int, str]:
    """The indices that ended well on the cluster but whose fetched result does not verify, each with the file to
    blame and what a rerun does.

    Their completion marker would make every rerun skip them and fetch the same bad files again, so the marker and
    the outputs are removed on the cluster: a rerun computes exactly these indices again. A scratch folder that is
    gone (purged between submit and fetch) is said so: a rerun stages and computes what is missing.
    """
    bad: dict[int, str] = {}
    for shard in pending:
        entry, why = checked_result(out_dir, shard, version, embeddings)
        if entry is None and shard.index not in failed:
            bad[shard.index] = why
    if not bad:
        return {}
    if transport.stat(scratch) is None:
        return {
            index: f"the scratch folder {scratch} is gone on the cluster (purged between submit and fetch?): {why}; "
            "run again: the batch is staged again and only the shards without a verified result are computed"
            for index, why in bad.items()
        }
    remote_out = posixpath.join(scratch, OUT_FOLDER)
    doomed = [script.marker_path(scratch, i) for i in sorted(bad)]
    doomed += [posixpath.join(remote_out, name) for i in sorted(bad) for name in result_files(i, embeddings=True)]
    removed = transport.run(["rm", "-f", "--", *doomed])
    after = (
        "its outputs on the cluster were removed: a rerun computes it again"
        if removed.ok
        else (f"removing its outputs on the cluster failed ({removed.stderr.strip()}): remove them and run again")
    )
    for index, why in sorted(bad.items()):
        log.error("compute slurm: shard %d: fetched result does not verify: %s", index, why)
    return {index: f"the fetched result does not verify: {why}; {after}" for index, why in bad.items()}
