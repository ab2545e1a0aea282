"""The kNN job's backends: the same payload (`python -m corpusbridge.graph.knn_payload`) per part, as subprocesses
here or as one SLURM array (one index per block of queries x all vectors), results fetched verified by sha256.

The SLURM job and its scratch folder are named after the work (input sha256, k, parts, python, options, label), so a
rerun re-attaches to its job or finds its indices done, and parts already verified on the workstation are never
computed again (submit-or-reattach, as compute/slurm.py does for the extraction payload).
"""

from __future__ import annotations

import logging
import posixpath
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpusbridge.compute.outputs import ComputeSummary, failure_message
from corpusbridge.compute.slurm import OUT_FOLDER, WITH_ARRAY_INDEX, mark_verified_here, wait_for_indices
from corpusbridge.graph.knn_files import KnnInput, part_entry_name, part_name, verified_part
from corpusbridge.hpc import jobs, naming, script, staging
from corpusbridge.hpc.cluster import ClusterSettings
from corpusbridge.hpc.local import LocalTransport
from corpusbridge.hpc.transport import Transport

log = logging.getLogger(__name__)

PAYLOAD_MODULE = "corpusbridge.graph.knn_payload"


@dataclass(frozen=True)
class KnnWork:
    """What the job computes: the input, k, and how many array indices split the queries."""

    source: KnnInput
    k: int = 10
    parts: int = 1
    device: str = "auto"

    def argv(self, python: str, vectors: str, out_dir: str) -> list[str]:
        """Everything but `--index` (appended per part here, from the array task id on SLURM)."""
        return [python, "-m", PAYLOAD_MODULE, "--vectors", vectors, "--sha256", self.source.sha256, "--out",
                out_dir, "--k", str(self.k), "--parts", str(self.parts), "--device", self.device, "--json"]  # fmt: skip

    def pending(self, out_dir: Path) -> list[int]:
        return [
            i for i in range(self.parts) if verified_part(out_dir, i, self.source.sha256, self.k, self.parts) is None
        ]


def knn_array_argv(work: KnnWork, python: str, vectors: str, out_dir: str) -> list[str]:
    """The argv of one SLURM array index: the payload on part $SLURM_ARRAY_TASK_ID (shared with the DAG's
    SlurmOperator, whose working dir is the scratch dir: `vectors` and `out_dir` may be relative to it)."""
    return ["sh", "-c", WITH_ARRAY_INDEX, "sh", *work.argv(python, vectors, out_dir)]


def run_neighbors_local(work: KnnWork, out_dir: Path, *, python: str | None = None) -> ComputeSummary:
    """Every part not yet verified in `out_dir`, one subprocess at a time (each uses every core through BLAS)."""
    started = time.monotonic()
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ComputeSummary(shards=work.parts, out_dir=str(out_dir), backend="local")
    pending = work.pending(out_dir)
    summary.skipped = work.parts - len(pending)
    transport = LocalTransport(out_dir)
    base = work.argv(python or sys.executable, str(work.source.path.absolute()), str(out_dir))
    for index in pending:
        result = transport.run([*base, "--index", str(index)])
        if not result.ok or verified_part(out_dir, index, work.source.sha256, work.k, work.parts) is None:
            summary.failed[index] = failure_message(f"exit {result.returncode}", result.stdout, result.stderr)
            log.error("knn local: part %d failed: %s", index, summary.failed[index])
    return _finish(summary, work, out_dir, started)


def run_neighbors_slurm_on(settings: ClusterSettings, work: KnnWork, out_dir: Path, **kwargs: Any) -> ComputeSummary:
    """run_neighbors_slurm over an OpenSSH transport to the cluster `settings` describe."""
    from corpusbridge.hpc.openssh import OpenSSHTransport

    kwargs["options"] = settings.sbatch_defaults() | dict(kwargs.get("options") or {})
    transport = OpenSSHTransport(settings)  # nothing to close: its ssh master is shared and times out by itself
    return run_neighbors_slurm(transport, settings.scratch_root, work, out_dir, **kwargs)


def run_neighbors_slurm(
    transport: Transport,
    scratch_root: str,
    work: KnnWork,
    out_dir: Path,
    *,
    python: str = "python3",
    parallelism: int | None = None,
    options: Mapping[str, object] | None = None,
    poll_seconds: float = 5.0,
    label: str = "",
    container: script.Container | None = None,
) -> ComputeSummary:
    """Stage the vectors, submit (or re-attach to) the array, wait, fetch `neighbors-I.*` verified.

    `container`: run the payload in this image (the scratch folder is bound inside; `Container(gpu=True)` adds `--nv`
    for `device` cuda/auto on GPU nodes, where the sbatch `options` ask for the GPU, e.g. `{"gres": "gpu:1"}`).
    """
    started = time.monotonic()
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ComputeSummary(shards=work.parts, out_dir=str(out_dir), backend="slurm")
    pending = work.pending(out_dir)
    summary.skipped = work.parts - len(pending)
    if pending:
        spec = _job_spec(scratch_root, work, python, parallelism, dict(options or {}), label, container)
        staging.stage_in(transport, [work.source.path], spec.scratch)
        transport.makedirs(posixpath.join(spec.scratch, OUT_FOLDER))
        mark_verified_here(transport, spec.scratch, [i for i in range(work.parts) if i not in pending])
        submission = jobs.submit_or_reattach(transport, spec)
        summary.job_ids = sorted(submission.jobs)
        summary.submitted = sorted(i for indices in submission.submitted.values() for i in indices)
        log.info("knn slurm: job %s, scratch %s", spec.job_name, spec.scratch)
        summary.failed.update(wait_for_indices(transport, spec.scratch, submission, poll_seconds))
        remote_out = posixpath.join(spec.scratch, OUT_FOLDER)
        names = [n for i in pending for n in (part_name(i), part_entry_name(i))]
        staging.fetch(transport, [posixpath.join(remote_out, n) for n in names], out_dir, require_match=False,
                      within=remote_out)  # fmt: skip
        forget_unverified(transport, spec.scratch, work, out_dir, pending, summary.failed)
    return _finish(summary, work, out_dir, started)


def forget_unverified(
    transport: Transport, scratch: str, work: KnnWork, out_dir: Path, pending: list[int], failed: Mapping[int, str]
) -> list[int]:
    """Parts that ended well on the cluster but whose fetched files do not verify: their completion marker and
    outputs are removed there, or every rerun would skip them and fetch the same bad files again. Returns them.
    (The DAG's neighbors_load calls it too: its SlurmOperator re-attaches to the same scratch dir across runs.)"""
    bad = [
        i
        for i in pending
        if i not in failed and verified_part(out_dir, i, work.source.sha256, work.k, work.parts) is None
    ]
    if not bad:
        return []
    remote_out = posixpath.join(scratch, OUT_FOLDER)
    doomed = [script.marker_path(scratch, i) for i in bad]
    doomed += [posixpath.join(remote_out, n) for i in bad for n in (part_name(i), part_entry_name(i))]
    result = transport.run(["rm", "-f", "--", *doomed])
    after = "were removed: a rerun computes them again" if result.ok else f"could not be removed: {result.stderr}"
    log.error("knn slurm: parts %s did not verify after the fetch; their outputs on the cluster %s", bad, after)
    return bad


def _job_spec(
    scratch_root: str,
    work: KnnWork,
    python: str,
    parallelism: int | None,
    options: dict[str, object],
    label: str,
    container: script.Container | None,
) -> jobs.JobSpec:
    what = {"input": work.source.sha256, "k": work.k, "parts": work.parts, "device": work.device, "python": python,
            "options": options, "label": label, "container": container}  # fmt: skip
    key = naming.WorkKey("corpusbridge", "knn", f"vectors-{work.source.sha256[:16]}", -1, naming.input_hash(what))
    scratch = naming.scratch_dir(scratch_root, key)
    vectors, out = posixpath.join(scratch, work.source.path.name), posixpath.join(scratch, OUT_FOLDER)
    command = knn_array_argv(work, python, vectors, out)
    return jobs.JobSpec(command, scratch, naming.job_name(key), work.parts, parallelism, options, container)


def _finish(summary: ComputeSummary, work: KnnWork, out_dir: Path, started: float) -> ComputeSummary:
    """Count the verified parts' rows; a part that ended well but does not verify is named as failed."""
    for index in range(work.parts):
        entry = verified_part(out_dir, index, work.source.sha256, work.k, work.parts)
        if entry is not None:
            summary.docs_processed += entry.stop - entry.start
        elif index not in summary.failed:
            summary.failed[index] = (
                f"{part_entry_name(index)}: missing or does not verify (sha256) after the run; run the kNN job again"
            )
    summary.seconds = round(time.monotonic() - started, 3)
    log.info("knn %s: %d parts, %d skipped, %d failed, %d documents in %.1f s", summary.backend, summary.shards,
             summary.skipped, len(summary.failed), summary.docs_processed, summary.seconds)  # fmt: skip
    return summary
