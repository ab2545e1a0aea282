"""The ingestion task: resolve where to read and which database, run the library, return the counts."""

from __future__ import annotations

import logging
from typing import Any

from corpusbridge_airflow import settings
from corpusbridge_airflow.stages import log_progress

log = logging.getLogger(__name__)


def ingest_stage(source_dir: str | None, limit_files: int | None = None) -> dict[str, Any]:
    """Run ingestion; the returned counts go to XCom. Bad records never fail the task, infrastructure does."""
    from corpusbridge.db import cli_command, connect
    from corpusbridge.ingest.stage import IngestOptions, run_ingest

    directory = settings.source_dir(source_dir)
    log.info("ingesting %s%s", directory, f" (first {limit_files} files)" if limit_files else "")
    uri = settings.postgres_uri()
    with connect(uri) as conn:
        summary = run_ingest(conn, directory, IngestOptions(limit_files=limit_files), progress=log_progress)
    if summary.records_quarantined:
        log.warning(
            "%d records quarantined (%s): see `%s`",
            summary.records_quarantined,
            ", ".join(f"{k}={v}" for k, v in summary.quarantine_by_class.items()),
            cli_command(uri, "quarantine"),
        )
    if summary.files_skipped:
        log.info("listing skipped %s", ", ".join(f"{n} {kind}" for kind, n in summary.files_skipped.items()))
    return summary.as_dict()
