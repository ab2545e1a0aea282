"""`corpusbridge status`: where the pipeline stands, from the run log and the tables (no file is read)."""

from __future__ import annotations

from typing import Any

import psycopg

from corpusbridge.load import statements
from corpusbridge.runs import Stage

TABLES = (
    "raw_documents",
    "clean_documents",
    "export_batches",
    "export_batch_documents",
    "load_ledger",
    "document_results",
    "document_concepts",
    "document_vectors",
    "quarantine",
    "concept_pairs",
    "document_neighbors",
)


def pipeline_status(conn: psycopg.Connection) -> dict[str, Any]:
    """Per stage: runs by status and the last run with its counts; table rows (estimated) and bytes; batches
    exported but not completely loaded; the last load's reconciliation."""
    stages: dict[str, dict[str, Any]] = {}
    for stage, status, count in conn.execute(statements.RUN_COUNTS):
        stages.setdefault(stage, {"runs": {}})["runs"][status] = count
    for stage, run_id, status, started, finished, seconds, error, counts in conn.execute(statements.LAST_RUNS):
        stages[stage]["last_run"] = {
            "run_id": run_id,
            "status": status,
            "started_at": started.isoformat() if started else None,
            "finished_at": finished.isoformat() if finished else None,
            "seconds": seconds,
            "error": error,
            "counts": counts,
        }
    tables = {
        name: {"rows_estimate": rows, "bytes": size}
        for name, rows, size in conn.execute(statements.TABLE_SIZES, (list(TABLES),))
    }
    unfinished = [
        {"batch_id": batch_id, "shards": shards, "shards_loaded": loaded, "docs": docs,
         "exported_at": created.isoformat(), "manifest": manifest}
        for batch_id, shards, loaded, docs, created, manifest in conn.execute(statements.UNFINISHED_BATCHES)
    ]  # fmt: skip
    last = conn.execute(statements.LAST_LOAD).fetchone()
    conn.rollback()  # read-only: end the implicit transaction
    reconciliation = None
    if last:
        reconciliation = {"run_id": last[0], "status": last[1], **last[3]}
    order = {stage.value: i for i, stage in enumerate(Stage)}  # data-flow order, not the alphabet's
    stages = dict(sorted(stages.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))
    return {"stages": stages, "tables": tables, "unfinished_batches": unfinished, "last_reconciliation": reconciliation}
