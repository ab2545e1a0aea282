"""corpus_compute's last tasks: load the fetched results exactly once, then reconcile the batch's counts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corpusbridge_airflow import settings
from corpusbridge_airflow.stages import log_progress
from corpusbridge_airflow.stages.compute import results_dir

log = logging.getLogger(__name__)

MISSING_SHOWN = 20


def load_stage(export: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Verify and load the batch's results; the ledger makes a retry or a rerun load nothing twice.

    The container image digest comes from each result-I.json (the payload records the image it ran in).
    """
    from corpusbridge.db import connect
    from corpusbridge.load.stage import Provenance, run_load

    batch_id = str(export["batch_id"])
    results = results_dir(batch_id)
    log.info("loading batch %s from %s (run %s)", batch_id, results, run_id)
    provenance = Provenance(run_label=run_id)
    with connect(settings.postgres_uri()) as conn:
        summary = run_load(conn, Path(export["manifest"]), results, provenance=provenance, progress=log_progress)
    counts = summary.as_dict()
    log.info(
        "load: batch %s, %s shards loaded, %s already in the ledger, %s documents, %s concepts, %s vectors",
        batch_id,
        counts.get("shards_loaded"),
        counts.get("shards_skipped"),
        counts.get("docs_loaded"),
        counts.get("concepts_loaded"),
        counts.get("vectors_loaded"),
    )
    return {**counts, "batch_id": batch_id}


def reconcile_stage(batch_id: str) -> dict[str, Any]:
    """exported = processed = loaded for the batch; a mismatch fails the run and names the missing documents."""
    from airflow.sdk.exceptions import AirflowFailException

    from corpusbridge.db import connect
    from corpusbridge.load.reconcile import reconcile

    with connect(settings.postgres_uri()) as conn:
        result = reconcile(conn, batch_id)
    line = (
        f"batch {batch_id}: {result.docs_exported} exported = {result.docs_processed} processed = "
        f"{result.docs_loaded} loaded"
    )
    if not result.ok:
        missing = result.missing_doc_ids
        shown = ", ".join(missing[:MISSING_SHOWN]) + (" ..." if len(missing) > MISSING_SHOWN else "")
        raise AirflowFailException(f"{line}: DOES NOT RECONCILE; {len(missing)} documents missing: {shown}")
    log.info("%s  [reconciled]", line)
    return {
        "batch_id": batch_id,
        "docs_exported": result.docs_exported,
        "docs_processed": result.docs_processed,
        "docs_loaded": result.docs_loaded,
        "ok": True,
    }
