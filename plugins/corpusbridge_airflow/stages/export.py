"""The first tasks of corpus_compute: check the run is configured, then export its selection as Parquet shards.

A run that has nothing to work with (no dictionary, no cluster connection for the slurm backend, nothing new to
export) skips with one message saying what to set, instead of failing and retrying.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from corpusbridge_airflow import settings
from corpusbridge_airflow.stages import log_progress

log = logging.getLogger(__name__)

BACKENDS = ("local", "slurm")


@dataclass(frozen=True)
class RunInfo:
    """What the export needs to know about the Airflow run: a backfill selects by its data interval."""

    run_id: str
    run_type: str
    interval_start: datetime | None = None
    interval_end: datetime | None = None

    @property
    def is_backfill(self) -> bool:
        return self.run_type == "backfill"


def run_info(context: Mapping[str, Any]) -> RunInfo:
    dag_run = context["dag_run"]
    return RunInfo(
        run_id=str(context["run_id"]),
        run_type=str(getattr(dag_run.run_type, "value", dag_run.run_type)),
        interval_start=context.get("data_interval_start"),
        interval_end=context.get("data_interval_end"),
    )


def preflight(params: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve the run's configuration, or skip the run naming every missing setting."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    backend = settings.compute_backend(params.get("backend"))
    if backend not in BACKENDS:
        raise AirflowFailException(
            f"backend {backend!r} (Param backend, else Variable {settings.BACKEND_VARIABLE!r}): choose one of "
            f"{', '.join(BACKENDS)}"
        )
    refused = settings.refused_params(params, cluster=backend == "slurm")
    if refused:
        raise AirflowFailException("; ".join(refused))
    missing = _missing_settings(params, backend)
    if missing:
        message = "corpus_compute is not configured, nothing to do: " + "; ".join(missing)
        log.warning(message)
        raise AirflowSkipException(message)
    terms = str(settings.dictionary_terms(params.get("dictionary")))
    if not Path(terms).is_file():
        raise AirflowFailException(
            f"dictionary {terms!r}: no such file; point Param 'dictionary' or Variable "
            f"{settings.DICTIONARY_VARIABLE!r} at a terms file (TSV concept_id<TAB>term, CSV or JSONL)"
        )
    log.info("backend %s, dictionary terms %s", backend, terms)
    return {"backend": backend, "terms": terms}


def _missing_settings(params: Mapping[str, Any], backend: str) -> list[str]:
    missing = []
    if not settings.dictionary_terms(params.get("dictionary")):
        missing.append(
            f"no concept dictionary: trigger with Param 'dictionary' (a terms file, e.g. the bundled "
            f"{_sample_terms()}) or set the Variable {settings.DICTIONARY_VARIABLE!r}"
        )
    if backend == "slurm" and not settings.has_connection(settings.HPC_CONN_ID):
        missing.append(
            f"backend slurm but no Connection {settings.HPC_CONN_ID!r}: create an ssh Connection (extras "
            "scratch_root, key_file, host_key) or `AIRFLOW_CONN_CORPUSBRIDGE_HPC`; or, on a workstation without a "
            f"cluster, set the Variable {settings.BACKEND_VARIABLE!r} to local (scheduled and Asset-triggered runs "
            "read it) or trigger with backend local"
        )
    return missing


def _sample_terms() -> str:
    from corpusbridge.load.pipeline import default_terms

    return str(default_terms())


def selection_for_run(
    params: Mapping[str, Any], run: RunInfo, dictionary_version: str | None, model_hash: str | None = None
) -> Any:
    """The documents this run sends to compute.

    A backfill run re-exports the documents cleaned in its data interval, whatever was loaded before (with today's
    dictionary and model: reprocessing); any other run takes the Params: new/changed documents by default, every
    matching one with `reprocess` or selection `all`.
    """
    from corpusbridge.export.selection import Selection

    reprocess = bool(params.get("reprocess")) or params.get("selection") == "all" or run.is_backfill
    return Selection(
        mode="all" if reprocess else "pending",
        year_from=params.get("year_from"),
        year_to=params.get("year_to"),
        source=params.get("source") or None,
        limit=params.get("limit"),
        query=params.get("query") or None,
        cleaned_from=run.interval_start if run.is_backfill else None,
        cleaned_to=run.interval_end if run.is_backfill else None,
        dictionary_version=dictionary_version,
        model_hash=model_hash,
    )


def export_stage(params: Mapping[str, Any], run: RunInfo, dictionary: Mapping[str, Any]) -> dict[str, Any]:
    """Export the run's selection; skip the rest of the run when there is nothing to send."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from corpusbridge.db import connect
    from corpusbridge.export.selection import SelectionError
    from corpusbridge.export.stage import run_export
    from corpusbridge.load.pipeline import model_hash

    embeddings = bool(params.get("embeddings", True))
    try:
        selection = selection_for_run(params, run, dictionary.get("version"), model_hash(embeddings))
    except SelectionError as exc:  # the trigger's filters contradict each other: a retry gives the same answer
        raise AirflowFailException(f"the run's filters cannot select anything: {exc}") from None
    out_dir = settings.work_dir() / "exports"
    log.info("exporting %s into %s", selection.describe(), out_dir)
    with connect(settings.postgres_uri()) as conn:
        summary = run_export(
            conn, selection, out_dir, shard_rows=int(params.get("shard_rows") or 50_000), progress=log_progress
        )
    result = {**summary.as_dict(), "selection": selection.describe()}
    if not result.get("shards"):
        raise AirflowSkipException(f"nothing to export ({selection.describe()}): {selection.why_empty()}")
    return result
