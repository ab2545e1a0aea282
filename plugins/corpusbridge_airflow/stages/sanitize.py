"""The sanitize task: resolve the database, run the stage, log docs/s and the counts, return them for XCom."""

from __future__ import annotations

import logging
from typing import Any

from corpusbridge_airflow import settings
from corpusbridge_airflow.stages import log_progress

log = logging.getLogger(__name__)

# What the DAG's sanitize task declares as its outlet: downstream DAGs can be scheduled on it.
CLEAN_DOCUMENTS_ASSET_URI = "corpusbridge://postgres/clean_documents"


def sanitize_stage(conn_uri: str | None = None) -> dict[str, Any]:
    """Sanitize what changed since the last run. Rejected documents never fail the task; infrastructure does.

    `conn_uri` None: the Connection `corpusbridge_postgres`, else `$CORPUSBRIDGE_DB`, else the embedded server.
    The result's `clean_changed` says whether the clean table changed (the Asset event is meaningful then).
    """
    from corpusbridge.db import cli_command, connect
    from corpusbridge.sanitize.stage import run_sanitize

    uri = conn_uri or settings.postgres_uri()
    with connect(uri) as conn:
        summary = run_sanitize(conn, progress=log_progress)
    log.info(
        "sanitize run %d: %d in = %d clean + %d rejected%s; %d duplicates linked, %d rows written, %.0f docs/s",
        summary.run_id,
        summary.docs_in,
        summary.docs_clean,
        summary.docs_rejected,
        f" {summary.reject_reasons}" if summary.reject_reasons else "",
        summary.duplicates_linked,
        summary.rows_written,
        summary.docs_per_second,
    )
    if summary.docs_rejected:
        log.warning("%d documents rejected: see `%s`", summary.docs_rejected,
                    cli_command(uri, f"sanitize --rejects {summary.docs_rejected}"))  # fmt: skip
    return {**summary.as_dict(), "clean_changed": summary.rows_written > 0}
