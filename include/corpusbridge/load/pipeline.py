"""The whole round trip without Airflow: ingest -> sanitize -> index -> export -> compute -> load -> reconcile.

`corpusbridge run` calls `run_pipeline`. Every stage is incremental, so the counts are this run's new documents at
each hop, and an identical second run exports nothing, submits no job and loads nothing. A batch still in flight
(computed in part, or not loaded) is found again by the export and finished: compute skips verified shards, the load
skips shards in its ledger.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import psycopg

from corpusbridge.compute.outputs import failure_line
from corpusbridge.config import home_dir
from corpusbridge.load import statements
from corpusbridge.load.ledger import Provenance
from corpusbridge.load.verify import ResultVerificationError

log = logging.getLogger(__name__)

Backend = Literal["local", "slurm"]


def default_terms() -> Path:
    """The bundled sample dictionary (58 concepts, 124 terms across biomedicine and ecology)."""
    return Path(str(resources.files("corpusbridge") / "dictionaries" / "sample-terms.tsv"))


class PipelineError(RuntimeError):
    """A hop that did not finish; the message names the shards or stage and says that a rerun resumes."""


@dataclass(frozen=True)
class PipelineOptions:
    backend: Backend = "local"
    source: Path | None = None
    terms: Path | None = None  # None: default_terms()
    embeddings: bool = True
    reprocess: bool = False  # export every document again, not only the new and changed ones
    shard_rows: int = 50_000
    run_label: str = "cli"
    work_dir: Path | None = None  # exports, results and the dictionary cache; default: the state folder
    cluster: Any = None  # a ClusterSettings, for the slurm backend
    slurm_python: str = "python3"
    container: str | None = None  # an image on the cluster (slurm backend)


@dataclass
class PipelineSummary:
    """This run's new documents at each hop, and the batch's reconciliation when one was loaded."""

    backend: str
    docs_ingested: int = 0
    docs_sanitized: int = 0
    docs_indexed: int = 0
    docs_exported: int = 0
    docs_processed: int = 0
    docs_loaded: int = 0
    concepts_loaded: int = 0
    vectors_loaded: int = 0
    batch_id: str | None = None
    shards: int = 0
    job_ids: list[str] = field(default_factory=list)
    dictionary_version: str | None = None
    reconciliation: dict[str, Any] | None = None

    @property
    def reconciled(self) -> bool:
        return bool(self.reconciliation is None or self.reconciliation.get("ok"))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"reconciled": self.reconciled}


def run_pipeline(conn: psycopg.Connection, options: PipelineOptions) -> PipelineSummary:
    """Every stage in order on `conn`; raises PipelineError (after loading what verified) when a shard failed."""
    from corpusbridge.compute.dictionary import cached_dictionary

    work = options.work_dir or home_dir()
    summary = PipelineSummary(backend=options.backend)
    if options.source is not None:  # before hours of ingest, not after
        from corpusbridge.ingest.discover import require_source_dir

        require_source_dir(options.source)
    # Built (or found cached) first: a bad terms file ends the run before ingest, sanitize and index, not after.
    dictionary = cached_dictionary(options.terms or default_terms(), work / "dictionaries")
    _prepare(conn, options, summary)
    summary.dictionary_version = dictionary.version
    exported = _export(conn, options, dictionary.version, work / "exports", summary)
    if exported is None:
        return summary
    results = work / "results" / str(summary.batch_id)
    compute = _compute(options, exported, dictionary.path, results)
    summary.docs_processed, summary.job_ids = compute.docs_processed, list(compute.job_ids)
    _load(conn, options, exported, results, summary, compute.failed)
    return summary


def _prepare(conn: psycopg.Connection, options: PipelineOptions, summary: PipelineSummary) -> None:
    """Ingest (when a source is given), sanitize and index: only what changed since their last runs."""
    from corpusbridge.index.stage import run_index
    from corpusbridge.ingest.stage import run_ingest
    from corpusbridge.sanitize.stage import run_sanitize

    if options.source is not None:
        summary.docs_ingested = run_ingest(conn, options.source).records_loaded
    sanitized = run_sanitize(conn)
    rejects = f" {sanitized.reject_reasons} (corpusbridge sanitize --rejects N)" if sanitized.docs_rejected else ""
    log.info("sanitize run %d: %d in = %d clean + %d rejected%s", sanitized.run_id, sanitized.docs_in,
             sanitized.docs_clean, sanitized.docs_rejected, rejects)  # fmt: skip
    indexed = run_index(conn)
    log.info("index run %d: %d in = %d indexed + %d deleted + %d failed", indexed.run_id, indexed.docs_in,
             indexed.docs_indexed, indexed.docs_deleted, indexed.docs_failed)  # fmt: skip
    summary.docs_sanitized, summary.docs_indexed = sanitized.docs_clean, indexed.docs_indexed


def _export(
    conn: psycopg.Connection, options: PipelineOptions, version: str, out_dir: Path, summary: PipelineSummary
) -> Path | None:
    from corpusbridge.export.selection import Selection
    from corpusbridge.export.stage import ExportDiskFull, run_export

    selection = Selection(
        mode="all" if options.reprocess else "pending",
        dictionary_version=version,
        model_hash=model_hash(options.embeddings),
    )
    try:
        exported = run_export(conn, selection, out_dir, shard_rows=options.shard_rows)
    except ExportDiskFull as exc:
        raise PipelineError(str(exc)) from exc
    if exported.batch_id is None or exported.manifest is None:
        log.info("run: nothing new to export; no job submitted, nothing to load")
        return None
    if _loaded_before(conn, exported.batch_id, exported.shards):
        log.info("run: batch %s holds the same documents, dictionary, model and extraction rules as a batch loaded "
                 "before, so its results would be the same: nothing is computed or loaded again (a new dictionary, "
                 "model or release with new extraction rules reprocesses; to compute it again all the same, e.g. "
                 "after a bad node, give another --shard-rows: a new batch)", exported.batch_id)  # fmt: skip
        return None
    summary.batch_id, summary.shards, summary.docs_exported = exported.batch_id, exported.shards, exported.docs_exported
    return Path(exported.manifest)


def _loaded_before(conn: psycopg.Connection, batch_id: str, shards: int) -> bool:
    """Every shard of the batch is in the load ledger already (a reprocess of unchanged inputs)."""
    row = conn.execute(statements.LEDGER_SHARDS, (batch_id,)).fetchone()
    conn.commit()
    return row is not None and row[0] >= shards


def model_hash(embeddings: bool) -> str | None:
    """The hash of the embedding model the payload will use (what document_results compares), None without vectors."""
    if not embeddings:
        return None
    from corpusbridge.extract.embeddings.embedder import DEFAULT_MODEL, WEIGHTS_FILE, model_path
    from corpusbridge.hashing import file_sha256

    return file_sha256(model_path(DEFAULT_MODEL) / WEIGHTS_FILE)


def _compute(options: PipelineOptions, manifest: Path, dictionary: Path, results: Path) -> Any:
    if options.backend == "local":
        from corpusbridge.compute.local import run_local

        return run_local(manifest, dictionary, results, embeddings=options.embeddings)
    if options.cluster is None:
        raise PipelineError(
            "the slurm backend needs a cluster connection: set AIRFLOW_CONN_CORPUSBRIDGE_HPC (JSON, as "
            "`scripts/hpc-sandbox.sh up` prints) or pass --hpc-conn"
        )
    from corpusbridge.compute.slurm import run_slurm_on
    from corpusbridge.hpc.staging import StagingError
    from corpusbridge.hpc.transport import TransportError

    try:
        return run_slurm_on(
            options.cluster, manifest, dictionary, results, embeddings=options.embeddings,
            python=options.slurm_python, container=options.container,
        )  # fmt: skip
    except (TransportError, StagingError, OSError) as exc:  # the connection, a transfer, or the results' disk
        raise PipelineError(
            f"compute on the cluster did not finish: {exc}. Nothing of this try was loaded; run again with the same "
            "options (they find this batch): staging and fetching resume where they stopped and no array index is "
            "submitted twice"
        ) from exc


def _load(
    conn: psycopg.Connection,
    options: PipelineOptions,
    manifest: Path,
    results: Path,
    summary: PipelineSummary,
    failed: dict[int, str],
) -> None:
    """Load what verified; a shard the compute could not finish fails the run by name after the others load."""
    from corpusbridge.load.stage import run_load

    try:
        loaded = run_load(conn, manifest, results, provenance=Provenance(options.run_label), compute_failures=failed)
    except ResultVerificationError as exc:
        if not failed:
            raise
        for index, why in sorted(failed.items()):
            log.error("run: shard %d failed: %s", index, why)  # with the whole stderr tail
        reasons = "; ".join(f"shard {i}: {failure_line(why)}" for i, why in sorted(failed.items()))
        others = summary.shards - len(failed)
        loaded_part = f"the other {others} shard(s) are loaded" if others > 0 else "nothing was loaded"
        raise PipelineError(
            f"batch {exc.batch_id}: compute failed for {len(failed)} shard(s) ({reasons}); {loaded_part}. Fix the "
            "cause and run again with the same options (they find this batch): only the failed shards are "
            "computed and loaded"
        ) from exc
    summary.docs_loaded, summary.concepts_loaded = loaded.docs_loaded, loaded.concepts_loaded
    summary.vectors_loaded, summary.reconciliation = loaded.vectors_loaded, loaded.reconciliation
