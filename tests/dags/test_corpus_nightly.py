"""The nightly DAG parses cleanly and runs its ingestion end to end through Airflow (dag.test, real PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

CORPORA = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db as airflow_db

    airflow_db.resetdb()
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert bag.import_errors == {}
    return bag


def test_dag_shape(dagbag) -> None:
    dag = dagbag.dags["corpus_nightly"]
    assert dag.catchup is False
    assert {"source_dir", "limit_files"} <= set(dag.params.keys())
    assert dag.task_dict["ingest"].retries >= 1
    assert [t.task_id for t in dag.topological_sort()] == ["ingest", "sanitize", "index", "publish_clean_documents"]


def test_ingest_task_runs_against_a_connection(dagbag, db_uri, tmp_path, monkeypatch) -> None:
    from psycopg.conninfo import conninfo_to_dict

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPORA, corpus, ignore=shutil.ignore_patterns("*.md"))
    info = conninfo_to_dict(db_uri)
    conn = {"conn_type": "postgres", "host": info.get("host"), "login": info.get("user"), "schema": info["dbname"]}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES", json.dumps(conn))
    run = dagbag.dags["corpus_nightly"].test(run_conf={"source_dir": str(corpus), "limit_files": 6})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    import psycopg

    with psycopg.connect(db_uri) as pg:
        assert pg.execute("SELECT files_seen, status FROM ingest_runs").fetchall() == [(6, "succeeded")]
        loaded = pg.execute("SELECT count(*) FROM raw_documents").fetchone()[0]
        clean = pg.execute("SELECT docs_clean + docs_rejected FROM sanitize_runs").fetchone()[0]
    assert loaded > 0 and clean == loaded, "every loaded document was sanitized (clean or rejected)"
    assert states == {"ingest": "success", "sanitize": "success", "index": "success",
                      "publish_clean_documents": "success"}  # fmt: skip


def test_elasticsearch_without_its_connection_fails_the_index_at_once(dagbag, db_uri, tmp_path, monkeypatch) -> None:
    """A missing Connection is a setting to fix, not an outage: no retries holding up the next night."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(db_uri)
    conn = {"conn_type": "postgres", "host": info.get("host"), "login": info.get("user"), "schema": info["dbname"]}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES", json.dumps(conn))
    monkeypatch.delenv("AIRFLOW_CONN_CORPUSBRIDGE_ES", raising=False)
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPORA, corpus, ignore=shutil.ignore_patterns("*.md"))
    run = dagbag.dags["corpus_nightly"].test(
        run_conf={"source_dir": str(corpus), "limit_files": 2, "search_backend": "elasticsearch"}
    )
    index = run.get_task_instance("index")
    assert (index.state, index.try_number) == ("failed", 1)
