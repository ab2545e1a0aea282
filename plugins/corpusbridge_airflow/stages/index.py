"""The index task: resolve the database (and the Elasticsearch Connection), run the stage, log and return counts."""

from __future__ import annotations

import logging
from typing import Any

from corpusbridge_airflow import settings
from corpusbridge_airflow.stages import log_progress

log = logging.getLogger(__name__)

ES_CONN_ID = "corpusbridge_es"


def index_stage(
    conn_uri: str | None = None,
    backend: str = "postgres",
    es_conn_id: str = ES_CONN_ID,
    rebuild: bool = False,
) -> dict[str, Any]:
    """Index clean documents changed since the backend's last run; fails the task if any document was refused.

    Refused documents are in `index_rejects` with the cluster's reason, so a failed task points at them.
    """
    from corpusbridge.db import connect
    from corpusbridge.index.stage import run_index

    if backend == "elasticsearch" and not settings.has_connection(es_conn_id):
        from airflow.sdk.exceptions import AirflowFailException

        # A setting, not an outage: retrying cannot help, and with max_active_runs=1 it would hold up the next run.
        raise AirflowFailException(
            f"search_backend elasticsearch but no Connection {es_conn_id!r}: create it (host, port, login, password; "
            "extra ca_certs), or `AIRFLOW_CONN_CORPUSBRIDGE_ES`, or trigger with search_backend postgres"
        )
    client = elasticsearch_client(es_conn_id) if backend == "elasticsearch" else None
    with connect(conn_uri or settings.postgres_uri()) as conn:
        summary = run_index(conn, backend, es_client=client, rebuild=rebuild, progress=log_progress)  # type: ignore[arg-type]
    log.info(
        "index run %d (%s, %s): %d in, %d indexed, %d deleted, %d failed, %.0f docs/s",
        summary.run_id,
        summary.backend,
        summary.mode,
        summary.docs_in,
        summary.docs_indexed,
        summary.docs_deleted,
        summary.docs_failed,
        summary.docs_per_second,
    )
    if summary.docs_failed:
        raise RuntimeError(
            f"{summary.docs_failed} documents refused by {backend} ({summary.failure_reasons}); "
            "see the index_rejects table, fix the cause, then clear this task"
        )
    return summary.as_dict()


def elasticsearch_client(conn_id: str = ES_CONN_ID) -> Any:
    """The official client built by the elasticsearch provider from Connection `conn_id` (host, port, login)."""
    from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchSQLHook

    connection = ElasticsearchSQLHook(elasticsearch_conn_id=conn_id).get_conn()
    log.info("Elasticsearch from Connection %r: %s", conn_id, connection.url)
    return connection.es
