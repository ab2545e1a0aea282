"""The local compute backend: the payload per shard as a subprocess on the workstation (no queue).

The same command the cluster runs, through the local transport (argument lists, never a shell string). A shard
whose result is already there and verifies is skipped, so a rerun does nothing; a failed shard is reported with its
exit status and stderr tail and the others still run.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from corpusbridge.compute.outputs import ComputeSummary, failure_message, verified_result
from corpusbridge.compute.payload import extract_argv
from corpusbridge.export.manifest import ExportManifest, ShardEntry, read_manifest
from corpusbridge.extract.dictionary import read_version
from corpusbridge.hpc.local import LocalTransport

log = logging.getLogger(__name__)


def run_local(
    manifest: Path,
    dictionary: Path,
    out_dir: Path,
    *,
    embeddings: bool = True,
    workers: int | None = None,
    indices: Sequence[int] | None = None,
    python: str | None = None,
) -> ComputeSummary:
    """Run the payload on each shard of `manifest` (or only `indices`), one shard at a time.

    `workers` is the payload's own `--workers` (processes per shard; default: all cores): shards run one after the
    other, as each already uses every core.
    """
    started = time.monotonic()
    manifest, dictionary, out_dir = Path(manifest).absolute(), Path(dictionary).absolute(), Path(out_dir).absolute()
    loaded = read_manifest(manifest)
    version = read_version(dictionary)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = _chosen(loaded, indices)
    summary = ComputeSummary(shards=len(shards), out_dir=str(out_dir), backend="local")
    base = extract_argv(
        python or sys.executable, str(manifest), str(dictionary), str(out_dir), embeddings=embeddings, workers=workers
    )
    transport = LocalTransport(out_dir)
    total = sum(shard.rows for shard in shards)
    for number, shard in enumerate(shards, start=1):
        entry = verified_result(out_dir, shard, version, embeddings)
        if entry is not None:
            summary.skipped += 1
        else:
            log.info("compute local: shard %d (%d/%d), %d documents...", shard.index, number, len(shards), shard.rows)
            shard_started = time.monotonic()
            result = transport.run([*base, "--index", str(shard.index)])
            entry = verified_result(out_dir, shard, version, embeddings) if result.ok else None
            if entry is None:
                summary.failed[shard.index] = _failure(result.returncode, result.stderr, result.stdout)
                log.error("compute local: shard %d failed: %s", shard.index, summary.failed[shard.index])
                continue
            _log_progress(shard, time.monotonic() - shard_started, summary.docs_processed + entry.input_rows, total,
                          time.monotonic() - started)  # fmt: skip
        summary.docs_processed += entry.input_rows
    summary.seconds = round(time.monotonic() - started, 3)
    log.info(
        "compute local: %d shard(s), %d skipped, %d failed, %d documents in %.1f s (%.1f docs/s)",
        summary.shards,
        summary.skipped,
        len(summary.failed),
        summary.docs_processed,
        summary.seconds,
        summary.docs_processed / summary.seconds if summary.seconds else 0.0,
    )
    return summary


def _log_progress(shard: ShardEntry, seconds: float, done: int, total: int, elapsed: float) -> None:
    """One line a shard: its rate, the documents done so far and, at the rate so far, the time left."""
    rate = shard.rows / seconds if seconds > 0 else 0.0
    left = (total - done) * elapsed / done if done else 0.0
    log.info("compute local: shard %d done in %.1f s (%.1f docs/s); %d of %d documents, about %.0f s left",
             shard.index, seconds, rate, done, total, left)  # fmt: skip


def _chosen(manifest: ExportManifest, indices: Sequence[int] | None) -> list[ShardEntry]:
    """The manifest's shards, or those named (an unknown index is an error naming the known ones)."""
    if indices is None:
        return sorted(manifest.shards, key=lambda s: s.index)
    return [manifest.shard(i) for i in sorted(set(indices))]


def _failure(returncode: int, stderr: str, stdout: str) -> str:
    if returncode == 0:
        return "exit 0 but the result does not verify against the manifest (missing or damaged output files)"
    return failure_message(f"exit {returncode}", stdout, stderr)
