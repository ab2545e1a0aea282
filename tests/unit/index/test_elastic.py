"""Elasticsearch request building and per-document error accounting, against the HTTP-level double."""

from __future__ import annotations

import pytest
from es_double import ClusterDouble, client_double

from corpusbridge.index import elastic
from corpusbridge.index.elastic import (
    ALIAS,
    MAPPING,
    delete_action,
    document_source,
    index_action,
    search_elasticsearch,
    search_query,
    send_bulk,
    swap_alias,
)

ROW = {
    "doc_id": "10.1/a",
    "canonical_id": "10.1/a",
    "source_format": "crossref",
    "title": "Mild asthma",
    "abstract": "As-needed therapy.",
    "full_text": None,
    "year": 2018,
    "venue": "NEJM",
    "language": "en",
    "clean_seq": 4,
    "authors": [{"name": "Paul O'Byrne", "orcid": "0000-0002-1825-0097"}, {"name": "A. Beasley"}],
}


@pytest.fixture
def cluster() -> ClusterDouble:
    cluster = ClusterDouble()
    cluster.indices["docs-1"] = {"mappings": MAPPING, "docs": {}}
    cluster.aliases[ALIAS] = {"docs-1"}
    return cluster


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elastic, "RETRY_BACKOFF_S", 0.0)


def test_document_source_matches_the_strict_mapping() -> None:
    source = document_source(ROW)
    assert set(source) == set(MAPPING["properties"])
    assert source["authors"] == ["Paul O'Byrne", "A. Beasley"] and source["orcids"] == ["0000-0002-1825-0097"]
    assert source["is_canonical"] is True


def test_actions_address_the_document_by_doc_id() -> None:
    assert index_action(ROW, "x") == {
        "_op_type": "index",
        "_index": "x",
        "_id": "10.1/a",
        "_source": document_source(ROW),
    }
    assert delete_action("10.1/a", "x") == {"_op_type": "delete", "_index": "x", "_id": "10.1/a"}


def test_bulk_counts_successes_and_keeps_each_refusal_with_its_reason(cluster: ClusterDouble) -> None:
    client = client_double(cluster)
    bad_year = {**ROW, "doc_id": "bad", "year": 99999}
    outcome = send_bulk(
        client,
        [index_action(ROW, ALIAS), index_action(bad_year, ALIAS), delete_action("never-indexed", ALIAS)],
        chunk_size=2,
    )
    assert (outcome.indexed, outcome.deleted) == (1, 1), "deleting a missing document reaches the wanted state"
    (failure,) = outcome.failures
    assert (failure.doc_id, failure.op_type, failure.status, failure.error_type) == (
        "bad",
        "index",
        400,
        "document_parsing_exception",
    )
    assert "failed to parse field [year]" in failure.reason
    assert list(cluster.docs(ALIAS)) == ["10.1/a"]
    assert [r for r in cluster.requests if r[1] == "/_bulk"] == [("PUT", "/_bulk")] * 2, "chunked by chunk_size"


def test_busy_cluster_items_are_retried_not_failed(cluster: ClusterDouble) -> None:
    cluster.refuse["10.1/a"] = (429, "es_rejected_execution_exception", "rejected execution: queue full")
    cluster.refuse_times["10.1/a"] = 2
    outcome = send_bulk(client_double(cluster), [index_action(ROW, ALIAS)])
    assert (outcome.indexed, outcome.failures) == (1, [])


def test_persistent_server_errors_become_failures(cluster: ClusterDouble) -> None:
    cluster.refuse["10.1/a"] = (500, "illegal_state_exception", "shard failure")
    outcome = send_bulk(client_double(cluster), [index_action(ROW, ALIAS)])
    assert [(f.status, f.error_type, f.reason) for f in outcome.failures] == [
        (500, "illegal_state_exception", "shard failure")
    ]


def test_alias_swap_is_one_atomic_call_then_old_index_dropped(cluster: ClusterDouble) -> None:
    client = client_double(cluster)
    client.indices.create(index="docs-2", mappings=MAPPING)
    swap_alias(client, ALIAS, "docs-2")
    assert cluster.aliases[ALIAS] == {"docs-2"} and "docs-1" not in cluster.indices
    assert [r for r in cluster.requests if r[1] == "/_aliases"] == [("POST", "/_aliases")]


def test_search_request_boosts_title_and_hides_duplicates() -> None:
    body = search_query("mild asthma", 5)
    assert body["size"] == 5
    assert body["query"]["bool"]["must"]["simple_query_string"]["fields"][0] == "title^4"
    assert body["query"]["bool"]["filter"] == {"term": {"is_canonical": True}}
    query = search_query('"mild asthma" or copd -children', 5)["query"]["bool"]["must"]["simple_query_string"]
    assert query["query"] == '"mild asthma" | copd -children', "the same web-search syntax as the PostgreSQL backend"


def test_search_parses_hits(cluster: ClusterDouble) -> None:
    client = client_double(cluster)
    other = {**ROW, "doc_id": "b", "canonical_id": "b", "title": "Severe disease", "abstract": "mild asthma"}
    copy = {**ROW, "doc_id": "c", "canonical_id": "10.1/a"}
    send_bulk(client, [index_action(r, ALIAS) for r in (ROW, other, copy)])
    hits = search_elasticsearch(client, "mild asthma", limit=5)
    assert [(h.doc_id, h.title, h.year) for h in hits] == [
        ("10.1/a", "Mild asthma", 2018),
        ("b", "Severe disease", 2018),
    ]
    assert hits[0].score > hits[1].score and hits[0].snippet == "As-needed therapy."
