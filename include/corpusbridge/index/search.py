"""One search entry point over both backends, returning the same ranked `Hit`s."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from corpusbridge.index.elastic import ALIAS, search_elasticsearch
from corpusbridge.index.fulltext import Hit, search_postgres
from corpusbridge.index.watermark import BACKENDS, Backend

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

MAX_LIMIT = 1000


def search(
    conn: psycopg.Connection | None,
    query: str,
    *,
    limit: int = 10,
    backend: Backend = "postgres",
    es_client: Elasticsearch | None = None,
    alias: str = ALIAS,
) -> list[Hit]:
    """Ranked hits (best first) for a web-search style query: words, "quoted phrases", -exclusions, or."""
    query = query.strip()
    if not query:
        raise ValueError('the search query is empty; give words to look for, e.g. corpusbridge search "mild asthma"')
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"--limit {limit} is out of range; use 1 to {MAX_LIMIT}")
    if backend == "postgres":
        if conn is None:
            raise ValueError("the postgres backend needs a database connection")
        return search_postgres(conn, query, limit=limit)
    if backend == "elasticsearch":
        if es_client is None:
            raise ValueError("the elasticsearch backend needs a client: set ELASTICSEARCH_URL or pass --es-url")
        return search_elasticsearch(es_client, query, limit=limit, alias=alias)
    raise ValueError(f"unknown search backend {backend!r}; use one of {', '.join(BACKENDS)}")
