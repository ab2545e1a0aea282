"""The functions the DAG's sanitize and index tasks call: counts returned, progress logged, ES from a Connection."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import psycopg
import pytest
from sanitize_support import put_raw, raw_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "index"))
from es_double import ClusterDouble, client_double

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


@pytest.fixture
def raw(db: psycopg.Connection) -> psycopg.Connection:
    put_raw(db, raw_row("a", title="Mild asthma", abstract="Therapy."), raw_row("b", title=" "))
    return db


def test_sanitize_stage_returns_counts_and_logs_docs_per_second(raw, db_uri: str, caplog) -> None:
    from corpusbridge_airflow.stages.sanitize import sanitize_stage

    caplog.set_level(logging.INFO)
    result = sanitize_stage(db_uri)
    assert (result["docs_in"], result["docs_clean"], result["docs_rejected"]) == (2, 1, 1)
    assert result["clean_changed"] is True and json.dumps(result), "the result must be XCom (JSON) safe"
    assert "docs/s" in caplog.text and "1 documents rejected" in caplog.text
    assert sanitize_stage(db_uri)["clean_changed"] is False


def test_index_stage_postgres(raw, db_uri: str, caplog) -> None:
    from corpusbridge_airflow.stages.index import index_stage
    from corpusbridge_airflow.stages.sanitize import sanitize_stage

    caplog.set_level(logging.INFO)
    sanitize_stage(db_uri)
    result = index_stage(db_uri, "postgres")
    assert (result["docs_in"], result["docs_indexed"]) == (1, 1) and "docs/s" in caplog.text


def test_elasticsearch_client_comes_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from corpusbridge_airflow.stages.index import elasticsearch_client

    connection = {"conn_type": "elasticsearch", "host": "127.0.0.1", "port": 9201, "schema": "http"}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_ES", json.dumps(connection))
    client = elasticsearch_client()
    assert [str(n.base_url) for n in client.transport.node_pool.all()] == ["http://127.0.0.1:9201"]


def test_index_stage_fails_the_task_when_documents_are_refused(raw, db_uri: str, monkeypatch) -> None:
    from corpusbridge.index import elastic
    from corpusbridge_airflow.stages import index as index_module
    from corpusbridge_airflow.stages.sanitize import sanitize_stage

    sanitize_stage(db_uri)
    cluster = ClusterDouble(refuse={"a": (400, "document_parsing_exception", "bad title")})
    monkeypatch.setattr(index_module, "elasticsearch_client", lambda conn_id: client_double(cluster))
    # The Connection the stage checks for first; the client built from it is the double above.
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_ES", '{"conn_type": "elasticsearch", "host": "es.example"}')
    monkeypatch.setattr(elastic, "RETRY_BACKOFF_S", 0.0)
    with pytest.raises(RuntimeError, match="index_rejects"):
        index_module.index_stage(db_uri, "elasticsearch")
    assert raw.execute("SELECT doc_id, reason FROM index_rejects").fetchall() == [("a", "bad title")]
