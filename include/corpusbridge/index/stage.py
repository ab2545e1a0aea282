"""The index stage: one call for either backend, so the CLI and the Airflow task stay thin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from corpusbridge.index.elastic import ALIAS, index_elasticsearch
from corpusbridge.index.fulltext import index_postgres
from corpusbridge.index.summary import IndexSummary
from corpusbridge.index.watermark import BACKENDS, Backend
from corpusbridge.runs import ProgressCallback

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


def run_index(
    conn: psycopg.Connection,
    backend: Backend = "postgres",
    *,
    es_client: Elasticsearch | None = None,
    alias: str = ALIAS,
    rebuild: bool = False,
    progress: ProgressCallback | None = None,
) -> IndexSummary:
    """Index clean documents changed since the backend's last run (every document with `rebuild`)."""
    if backend == "postgres":
        return index_postgres(conn, rebuild=rebuild, progress=progress)
    if backend == "elasticsearch":
        if es_client is None:
            raise ValueError("the elasticsearch backend needs a client: set ELASTICSEARCH_URL or pass --es-url")
        return index_elasticsearch(conn, es_client, alias=alias, rebuild=rebuild, progress=progress)
    raise ValueError(f"unknown index backend {backend!r}; use one of {', '.join(BACKENDS)}")
