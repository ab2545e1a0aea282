"""Against a real Elasticsearch (set ELASTICSEARCH_URL): build, incremental update, alias swap, search, refusal."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from sanitize_support import put_raw, raw_row

from corpusbridge.index.elastic import connect, index_elasticsearch
from corpusbridge.index.search import search
from corpusbridge.sanitize.stage import run_sanitize

URL = os.environ.get("ELASTICSEARCH_URL")
pytestmark = [
    pytest.mark.elasticsearch,
    pytest.mark.integration,
    pytest.mark.skipif(not URL, reason="ELASTICSEARCH_URL is not set: no Elasticsearch to test against"),
]


@pytest.fixture
def es():
    client = connect(URL)
    alias = f"corpusbridge-test-{uuid.uuid4().hex[:8]}"
    yield client, alias
    # Wildcard deletes are refused by default (action.destructive_requires_name): name each index.
    for name in client.indices.get(index=f"{alias}-*", allow_no_indices=True):
        client.indices.delete(index=name)


def test_build_update_swap_and_search(db: psycopg.Connection, es) -> None:
    client, alias = es
    put_raw(
        db,
        raw_row("t", title="Climate change and wildfire occurrence", abstract="Fires in biomes. " * 10),
        raw_row("a", title="Drought", abstract="Climate change and wildfire occurrence. " * 5),
    )
    run_sanitize(db)
    first = index_elasticsearch(db, client, alias=alias)
    assert (first.mode, first.docs_indexed, first.docs_failed) == ("rebuild", 2, 0)
    client.indices.refresh(index=alias)
    hits = search(None, "climate change wildfire", backend="elasticsearch", es_client=client, alias=alias)
    assert hits[0].doc_id == "t"
    put_raw(db, raw_row("a", title="", abstract=""))
    run_sanitize(db)
    update = index_elasticsearch(db, client, alias=alias)
    assert (update.mode, update.docs_deleted) == ("incremental", 1)
    rebuilt = index_elasticsearch(db, client, alias=alias, rebuild=True)
    assert list(client.indices.get_alias(name=alias)) == [rebuilt.index_name]
