"""The Elasticsearch index stage end to end: embedded PostgreSQL as the source, the HTTP double as the cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest
from es_double import ClusterDouble, client_double

from corpusbridge.index import elastic
from corpusbridge.index.elastic import ALIAS, index_elasticsearch
from corpusbridge.sanitize.stage import run_sanitize

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
from sanitize_support import put_raw, raw_row

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elastic, "RETRY_BACKOFF_S", 0.0)


@pytest.fixture
def cleaned(db: psycopg.Connection) -> psycopg.Connection:
    put_raw(db, *(raw_row(f"doc-{i}", title=f"Title {i}", abstract="Mild asthma therapy.") for i in range(5)))
    run_sanitize(db)
    return db


def test_first_run_builds_an_index_behind_the_alias(cleaned: psycopg.Connection) -> None:
    cluster = ClusterDouble()
    summary = index_elasticsearch(cleaned, client_double(cluster), batch_size=2)
    assert (summary.mode, summary.docs_in, summary.docs_indexed, summary.docs_failed) == ("rebuild", 5, 5, 0)
    assert cluster.aliases[ALIAS] == {summary.index_name} and len(cluster.docs(ALIAS)) == 5
    state = cleaned.execute("SELECT watermark, index_name FROM index_state WHERE backend = 'elasticsearch'")
    assert state.fetchone() == (summary.to_seq, summary.index_name)


def test_incremental_sends_only_changes_and_deletes_removed_documents(cleaned: psycopg.Connection) -> None:
    cluster = ClusterDouble()
    client = client_double(cluster)
    index_elasticsearch(cleaned, client)
    again = index_elasticsearch(cleaned, client)
    assert (again.mode, again.docs_in) == ("incremental", 0)
    put_raw(cleaned, raw_row("doc-1", title="Title one, revised"), raw_row("doc-2", title="", abstract=""))
    run_sanitize(cleaned)
    summary = index_elasticsearch(cleaned, client)
    assert (summary.docs_in, summary.docs_indexed, summary.docs_deleted) == (2, 1, 1)
    assert cluster.docs(ALIAS)["doc-1"]["title"] == "Title one, revised" and "doc-2" not in cluster.docs(ALIAS)


def test_refused_documents_go_to_index_rejects_and_leave_when_they_succeed(cleaned: psycopg.Connection) -> None:
    cluster = ClusterDouble()
    cluster.refuse["doc-3"] = (400, "document_parsing_exception", "failed to parse field [title]")
    summary = index_elasticsearch(cleaned, client_double(cluster))
    assert (summary.docs_in, summary.docs_indexed, summary.docs_failed) == (5, 4, 1)
    assert summary.failure_reasons == {"document_parsing_exception": 1}
    rejects = cleaned.execute("SELECT doc_id, status, error_type, reason FROM index_rejects").fetchall()
    assert rejects == [("doc-3", 400, "document_parsing_exception", "failed to parse field [title]")]
    run = cleaned.execute("SELECT status, docs_in, docs_indexed, docs_failed FROM index_runs").fetchone()
    assert run == ("succeeded", 5, 4, 1)
    cluster.refuse.clear()
    index_elasticsearch(cleaned, client_double(cluster), rebuild=True)
    assert cleaned.execute("SELECT count(*) FROM index_rejects").fetchone()[0] == 0


def test_rebuild_swaps_alias_to_a_fresh_index(cleaned: psycopg.Connection) -> None:
    cluster = ClusterDouble()
    client = client_double(cluster)
    first = index_elasticsearch(cleaned, client)
    second = index_elasticsearch(cleaned, client, rebuild=True)
    assert second.index_name != first.index_name
    assert cluster.aliases[ALIAS] == {second.index_name} and first.index_name not in cluster.indices


def test_unreachable_cluster_fails_the_run_and_keeps_the_watermark(cleaned: psycopg.Connection) -> None:
    from elasticsearch import Elasticsearch

    client = Elasticsearch("http://127.0.0.1:9", request_timeout=0.5, max_retries=0)
    with pytest.raises(Exception):  # noqa: B017  (connection refused, whatever the transport calls it)
        index_elasticsearch(cleaned, client)
    assert cleaned.execute("SELECT status FROM index_runs").fetchone() == ("failed",)
    assert cleaned.execute("SELECT count(*) FROM index_state").fetchone()[0] == 0


def test_a_rebuild_refused_wholesale_keeps_the_previous_index(cleaned: psycopg.Connection) -> None:
    cluster = ClusterDouble()
    client = client_double(cluster)
    first = index_elasticsearch(cleaned, client)
    cluster.refuse.update({f"doc-{i}": (400, "mapper_parsing_exception", "broken mapping") for i in range(5)})
    with pytest.raises(RuntimeError, match="alias still points at the previous index"):
        index_elasticsearch(cleaned, client, rebuild=True)
    assert cluster.aliases[ALIAS] == {first.index_name} and len(cluster.indices) == 1
    assert cleaned.execute("SELECT count(*) FROM index_rejects").fetchone()[0] == 5
    assert cleaned.execute("SELECT status FROM index_runs ORDER BY run_id DESC LIMIT 1").fetchone() == ("failed",)
