"""corpus_nightly: ingest the night's crawl, sanitize what changed, update the full-text index.

Trigger from the UI with Params to prototype on a subset: `source_dir`, `limit_files`, `search_backend`.
When the clean table changed, the Asset `corpusbridge://postgres/clean_documents` gets an event, so exports
and other downstream DAGs can be data-aware (corpus_compute runs on it).

Backfills: ingestion reads the source directory as it is now, through its file ledger; a run for a past logical
date ingests whatever is new or changed today (nothing, if the last run saw it all) and never re-reads the files of
that date. To reprocess past documents, backfill corpus_compute instead. With no source configured a run skips with
a message saying what to set.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

CLEAN_DOCUMENTS = Asset("corpusbridge://postgres/clean_documents")


@dag(
    dag_id="corpus_nightly",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "source_dir": Param(
            None,
            type=["null", "string"],
            title="Source directory",
            description="Crawl directory to ingest (default: Variable corpusbridge_source_dir)",
        ),
        "limit_files": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Limit files",
            description="Read at most N files (in a stable order): prototype on a subset",
        ),
        "search_backend": Param(
            "postgres",
            enum=["postgres", "elasticsearch"],
            title="Search backend",
            description="Full-text index: PostgreSQL FTS, or Elasticsearch through Connection corpusbridge_es",
        ),
    },
    tags=["corpusbridge"],
    doc_md=__doc__,
)
def corpus_nightly() -> None:
    @task
    def ingest(params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from corpusbridge_airflow import settings
        from corpusbridge_airflow.stages.ingest import ingest_stage

        params = params or {}
        try:
            directory = settings.configured_source_dir(params.get("source_dir"))
        except settings.ParamPathRefused as exc:
            raise AirflowFailException(str(exc)) from None
        if not directory:
            raise AirflowSkipException(
                f"no source directory, nothing to ingest: set the Variable {settings.SOURCE_DIR_VARIABLE!r} "
                "or trigger with Param source_dir"
            )
        return ingest_stage(directory, params.get("limit_files"))

    @task
    def sanitize() -> dict:
        from corpusbridge_airflow.stages.sanitize import sanitize_stage

        return sanitize_stage()

    @task
    def index(sanitized: dict, params: dict | None = None) -> dict:
        from corpusbridge_airflow.stages.index import index_stage

        return index_stage(None, (params or {}).get("search_backend") or "postgres")

    @task(outlets=[CLEAN_DOCUMENTS])
    def publish_clean_documents(sanitized: dict, indexed: dict, outlet_events=None) -> None:  # type: ignore[no-untyped-def]
        from airflow.sdk.exceptions import AirflowSkipException

        if not sanitized["clean_changed"]:
            raise AirflowSkipException("clean_documents unchanged: no Asset event")
        outlet_events[CLEAN_DOCUMENTS].extra = {
            "sanitize_run_id": sanitized["run_id"],
            "rows_written": sanitized["rows_written"],
        }

    sanitized = sanitize()
    ingest() >> sanitized
    publish_clean_documents(sanitized, index(sanitized))


corpus_nightly()
