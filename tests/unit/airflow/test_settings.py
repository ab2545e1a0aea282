"""How the Airflow side turns Connections and Variables into library arguments."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.airflow


def test_postgres_connection_fields_become_a_conninfo_without_logging_the_password(caplog, monkeypatch) -> None:
    import json

    from psycopg.conninfo import conninfo_to_dict

    from corpusbridge_airflow.settings import postgres_uri

    conn = {"conn_type": "postgres", "host": "db.example", "port": 5433, "login": "cb", "password": "s3cret",
            "schema": "corpus", "extra": {"sslmode": "require", "unrelated": "x"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES", json.dumps(conn))
    with caplog.at_level("INFO"):
        info = conninfo_to_dict(postgres_uri())
    assert info == {"host": "db.example", "port": "5433", "user": "cb", "password": "s3cret", "dbname": "corpus",
                    "sslmode": "require"}  # fmt: skip
    assert "s3cret" not in caplog.text


def test_missing_connection_means_library_default(monkeypatch) -> None:
    from corpusbridge_airflow.settings import postgres_uri

    monkeypatch.delenv("AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES", raising=False)
    assert postgres_uri() is None


def test_source_dir_param_wins_and_absence_is_explained(monkeypatch) -> None:
    from corpusbridge_airflow.settings import source_dir

    assert source_dir("/data/crawl") == "/data/crawl"
    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_SOURCE_DIR", "/from/variable")
    assert source_dir(None) == "/from/variable"
    monkeypatch.delenv("AIRFLOW_VAR_CORPUSBRIDGE_SOURCE_DIR")
    with pytest.raises(ValueError, match="corpusbridge_source_dir"):
        source_dir(None)
