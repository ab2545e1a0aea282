"""The load stage: verified payload results into document_concepts / document_vectors, each shard exactly once.

    with connect() as conn:
        summary = run_load(conn, Path("export/<batch>/manifest.json"), Path("results/<batch>"),
                           provenance=Provenance(run_label="manual__2026-01-01"))

One transaction per shard (several shards at once, each on a connection of its own: load/parallel.py): refuse
documents the export did not put into the shard, delete the previous concepts and vector of the shard's documents
(a document processed again is replaced, never duplicated), COPY the concept rows straight into document_concepts
and the vectors through a temporary table, upsert document_results and insert the ledger row, which keeps the
image digest the payload recorded (one per shard; a different digest from the caller fails the run before any shard
loads). A shard already in the ledger with the same result sha256 is skipped; with another sha256 the run fails
(the result changed after it was loaded). Shards that fail verification are named in one error after the verified
ones are loaded, so a retry after a re-fetch loads only those. The run ends with the batch's reconciliation, stored
on the run row; a mismatch fails the run after it is recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psycopg

from corpusbridge.compute.outputs import failure_line
from corpusbridge.config import load_workers
from corpusbridge.export.manifest import ExportManifest, ManifestError, read_manifest
from corpusbridge.extract.results import result_name
from corpusbridge.graph.load import GraphMismatch, fold_pending, load_shard_pairs
from corpusbridge.hashing import file_sha256
from corpusbridge.load import ledger, statements
from corpusbridge.load.ledger import ImageDigestConflict, Provenance, ResultChanged, ShardCounts
from corpusbridge.load.parallel import loaded_shards
from corpusbridge.load.reconcile import Reconciliation, ReconciliationError, reconcile
from corpusbridge.load.streams import ResultFormatError, copy_concepts, copy_vectors, read_contents
from corpusbridge.load.verify import BadShard, ResultVerificationError, VerifiedShard, check_results
from corpusbridge.runs import (
    ProgressCallback,
    ProgressMeter,
    RunSummary,
    Stage,
    StageBusy,
    checkpoint,
    recorded_run,
    stage_lock,
    start_run,
)

__all__ = [
    "LOAD_FAILURES",
    "ImageDigestConflict",
    "LoadError",
    "LoadSummary",
    "Provenance",
    "ResultChanged",
    "ResultVerificationError",
    "run_load",
]

log = logging.getLogger(__name__)


class LoadError(RuntimeError):
    """A shard or batch that cannot be loaded as it is; the message names it and the fix."""


# What a load can fail with that a person can act on (each message names the shard or batch and the fix).
LOAD_FAILURES = (
    LoadError,
    GraphMismatch,
    ImageDigestConflict,
    ManifestError,
    ResultChanged,
    ResultFormatError,
    ResultVerificationError,
    ReconciliationError,
    StageBusy,
)


@dataclass
class LoadSummary(RunSummary):
    columns: ClassVar[tuple[str, ...]] = (
        "batch_id",
        "run_label",
        "shards_loaded",
        "shards_skipped",
        "docs_loaded",
        "docs_processed",
        "concepts_loaded",
        "vectors_loaded",
        "reconciliation",
    )

    batch_id: str | None = None
    run_label: str | None = None
    shards_loaded: int = 0
    shards_skipped: int = 0
    docs_loaded: int = 0  # documents whose results this run loaded (a rerun loads 0)
    docs_processed: int = 0  # the payload's input rows of the shards this run loaded
    concepts_loaded: int = 0
    vectors_loaded: int = 0
    reconciliation: dict[str, Any] | None = field(default=None)

    @property
    def reconciled(self) -> bool:
        return bool(self.reconciliation is None or self.reconciliation.get("ok"))


def run_load(
    conn: psycopg.Connection,
    manifest: Path,
    results_dir: Path,
    *,
    provenance: Provenance,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    compute_failures: Mapping[int, str] | None = None,
) -> LoadSummary:
    """Load every shard of the manifest's batch from `results_dir` exactly once; see the module docstring.
    `workers`: shards loading at once (default `config.load_workers()`). `compute_failures`: why the caller's
    compute could not finish these shards, recorded as the run's error instead of their missing results."""
    batch = read_manifest(manifest)
    with stage_lock(conn, Stage.LOAD):
        values = {"batch_id": batch.batch_id, "run_label": provenance.run_label}
        run_id = start_run(conn, Stage.LOAD, values)
        summary = LoadSummary(run_id=run_id, batch_id=batch.batch_id, run_label=provenance.run_label)
        with recorded_run(conn, Stage.LOAD, summary):
            _load_batch(conn, manifest, batch, results_dir, summary, provenance, progress, workers or load_workers(),
                        compute_failures or {})  # fmt: skip
    return summary


def _load_batch(
    conn: psycopg.Connection,
    manifest: Path,
    batch: ExportManifest,
    results_dir: Path,
    summary: LoadSummary,
    provenance: Provenance,
    progress: ProgressCallback | None,
    workers: int,
    compute_failures: Mapping[int, str],
) -> None:
    _check_registered(conn, manifest, batch)
    _fold_graph(conn)  # what a crashed run left pending
    pending = _pending_shards(conn, batch, results_dir, summary)
    good, bad = check_results(pending, results_dir)
    ledger.check_image_digests(batch.batch_id, good, provenance)  # before any shard loads: all of them or none
    meter = ProgressMeter(Stage.LOAD, progress, total=sum(s.entry.input_rows for s in good), unit="docs")

    def load_one(shard_conn: psycopg.Connection, shard: VerifiedShard) -> ShardCounts:
        return load_shard(shard_conn, batch.batch_id, shard, run_id=summary.run_id, provenance=provenance)

    for shard, counts in loaded_shards(conn, good, load_one, workers=workers):
        summary.shards_loaded += 1
        summary.docs_loaded += counts.docs
        summary.docs_processed += shard.entry.input_rows
        summary.concepts_loaded += counts.concepts
        summary.vectors_loaded += counts.vectors
        meter.advance(counts.docs, concepts=counts.concepts, vectors=counts.vectors)
        checkpoint(conn, Stage.LOAD, summary)
    meter.report()
    _fold_graph(conn)
    if bad:
        failed = {b.index for b in bad} <= compute_failures.keys()
        if failed:
            bad = [BadShard(i, "compute", failure_line(compute_failures[i])) for i in sorted({b.index for b in bad})]
        raise ResultVerificationError(batch.batch_id, bad, compute_failed=failed)
    _finish(conn, batch.batch_id, summary)


def _fold_graph(conn: psycopg.Connection) -> None:
    started = time.monotonic()
    shards = fold_pending(conn)
    if shards:
        log.info("concept graph: %d shard delta(s) folded in %.1f s", shards, time.monotonic() - started)


def _finish(conn: psycopg.Connection, batch_id: str, summary: LoadSummary) -> None:
    """Mark the batch loaded when complete, then reconcile; the reconciliation is saved even when it fails."""
    with conn.transaction():
        if ledger.mark_batch_loaded(conn, batch_id):
            log.info("batch %s: every shard is loaded", batch_id)
    result = reconcile(conn, batch_id)
    summary.reconciliation = result.as_dict()
    checkpoint(conn, Stage.LOAD, summary)
    _log_reconciliation(result)
    if not result.ok:
        raise ReconciliationError(result)


def _log_reconciliation(result: Reconciliation) -> None:
    (log.info if result.ok else log.error)("load: %s", result)


def _check_registered(conn: psycopg.Connection, manifest: Path, batch: ExportManifest) -> None:
    """The batch must be this database's, in flight or loaded, and described by the very manifest it exported."""
    row = conn.execute(statements.BATCH, (batch.batch_id,)).fetchone()
    conn.commit()
    if row is None:
        raise LoadError(
            f"batch {batch.batch_id} is not in export_batches of this database; load it into the database it was "
            "exported from, or export the documents again"
        )
    shard_count, status, manifest_sha256 = row
    if status == "abandoned":
        raise LoadError(
            f"batch {batch.batch_id} was abandoned (its documents went back to the pending selection); "
            "export them again and load the new batch"
        )
    if shard_count != len(batch.shards) or file_sha256(manifest) != manifest_sha256:
        raise LoadError(
            f"{manifest}: not the manifest the export wrote for batch {batch.batch_id} (sha256 or shard count "
            "differ); use the manifest.json of that export"
        )


def _pending_shards(
    conn: psycopg.Connection, batch: ExportManifest, results_dir: Path, summary: LoadSummary
) -> ExportManifest:
    """The manifest narrowed to shards not yet in the ledger; a loaded shard whose result changed raises."""
    pending = []
    for shard in batch.shards:
        loaded = ledger.loaded_sha(conn, batch.batch_id, shard.index)
        if loaded is None:
            pending.append(shard)
            continue
        # Already loaded: its files are not needed any more (scratch may be purged), but a result that is still
        # there must be the one that was loaded.
        result = results_dir / result_name(shard.index)
        now = file_sha256(result) if result.is_file() else loaded
        if now != loaded:
            raise ResultChanged(batch.batch_id, shard.index, loaded, now)
        summary.shards_skipped += 1
    conn.commit()
    return ExportManifest(batch.batch_id, batch.schema_fingerprint, pending)


def load_shard(
    conn: psycopg.Connection, batch_id: str, shard: VerifiedShard, *, run_id: int, provenance: Provenance
) -> ShardCounts:
    """Load one verified shard in one transaction that ends with its ledger row; returns what it loaded."""
    entry = shard.entry
    concepts_path, vectors_path = shard.output("concepts"), shard.output("vectors")
    assert concepts_path is not None  # verification requires it
    contents = read_contents(concepts_path, vectors_path)
    params = {"batch": batch_id, "shard": entry.index, "has_vectors": vectors_path is not None}
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()  # inside an open transaction, transaction() would be a savepoint: not one commit per shard
    with conn.transaction():
        _refuse_strays(conn, batch_id, entry.index, contents.doc_ids)
        # the concept graph: the previous rows' counts go before those rows are deleted
        graph = load_shard_pairs(conn, batch_id, shard, concept_docs=contents.concept_docs)
        if graph.docs_replaced:  # only a document loaded before has rows (they are written with its result row)
            conn.execute(statements.DELETE_CONCEPTS, params)
            conn.execute(statements.DELETE_VECTORS, params)
        concepts = copy_concepts(conn, concepts_path, batch_id=batch_id, shard=entry.index)
        vectors = 0
        if vectors_path is not None:
            copy_vectors(conn, vectors_path)
            vectors = conn.execute(statements.INSERT_VECTORS, params).rowcount
        counts = ShardCounts(docs=entry.input_rows, concepts=concepts, vectors=vectors)
        ledger.record(conn, batch_id, shard, counts, run_id=run_id, provenance=provenance)
        results = {"dictionary_version": entry.dictionary_version, "model_hash": entry.model_hash}
        docs = conn.execute(statements.UPSERT_RESULTS, params | results).rowcount
        if docs != entry.input_rows:
            raise LoadError(
                f"batch {batch_id} shard {entry.index}: the payload processed {entry.input_rows} documents, "
                f"export_batch_documents lists {docs} for this shard; export the batch again"
            )
    return counts


def _refuse_strays(conn: psycopg.Connection, batch_id: str, index: int, doc_ids: list[str]) -> None:
    params = {"batch": batch_id, "shard": index, "docs": doc_ids}
    strays = [row[0] for row in conn.execute(statements.STRAY_DOCS, params)]
    if strays:
        raise LoadError(
            f"batch {batch_id} shard {index}: results name documents the export did not put into this shard "
            f"({', '.join(strays)}); the result belongs to another export, fetch the right one"
        )
