"""corpus_nightly: ingest the night's crawl into PostgreSQL (later stages extend this DAG).

Trigger from the UI with Params to prototype on a subset: `source_dir`, `limit_files`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task


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
            description="Crawl directory to ingest (default: Variable corpusbridge_source_dir)",
        ),
        "limit_files": Param(None, type=["null", "integer"], minimum=1, description="Read at most N files"),
    },
    tags=["corpusbridge"],
    doc_md=__doc__,
)
def corpus_nightly() -> None:
    @task
    def ingest(params: dict | None = None) -> dict:
        from corpusbridge_airflow.stages.ingest import ingest_stage

        params = params or {}
        return ingest_stage(params.get("source_dir"), params.get("limit_files"))

    ingest()


corpus_nightly()
