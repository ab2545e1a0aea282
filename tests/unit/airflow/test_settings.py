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


def test_path_params_stay_under_the_roots_an_admin_allows(monkeypatch, tmp_path) -> None:
    """Triggering is a lower permission than editing Variables: with roots set, a Param cannot name other files
    for the worker to read, nor another program for the cluster to run."""
    from corpusbridge_airflow.settings import ParamPathRefused, param_path, refused_params, source_dir

    allowed = tmp_path / "crawl"
    (allowed / "2026").mkdir(parents=True)
    monkeypatch.delenv("AIRFLOW_VAR_CORPUSBRIDGE_PARAM_ROOTS", raising=False)
    assert param_path("/etc", "source_dir") == "/etc"  # no roots: a single-user workstation names any path

    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_PARAM_ROOTS", f"{allowed}, /srv/dictionaries")
    assert source_dir(str(allowed / "2026")) == str(allowed / "2026")
    for outside in ("/etc", str(allowed / ".." / "other"), str(tmp_path)):
        with pytest.raises(ParamPathRefused, match="corpusbridge_param_roots"):
            source_dir(outside)
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(ParamPathRefused):  # resolved before it is judged
        param_path(str(allowed / ".." / "link"), "dictionary")

    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_CLUSTER_PARAM_ROOTS", "/shared/images")
    assert param_path("/shared/images/cb.sqfs", "container", cluster=True) == "/shared/images/cb.sqfs"
    for outside in ("/shared/images/../../home/x/evil.sh", "/shared/imagesX/cb.sqfs", "python3"):
        with pytest.raises(ParamPathRefused, match="corpusbridge_cluster_param_roots"):
            param_path(outside, "cluster_python", cluster=True)
    reasons = refused_params({"dictionary": "/etc/passwd", "container": "/tmp/x.sif", "query": "/etc"}, cluster=True)
    assert [r.split(" ")[1] for r in reasons] == ["dictionary", "container"]
    assert refused_params({"dictionary": "/srv/dictionaries/mesh.tsv"}, cluster=False) == []


def test_runs_without_a_backend_param_take_the_variable(monkeypatch) -> None:
    """Scheduled and Asset-triggered runs carry no Param of their own: a workstation without a cluster sets the
    Variable, or every nightly corpus_compute would skip for want of a cluster."""
    from corpusbridge_airflow.settings import compute_backend

    monkeypatch.delenv("AIRFLOW_VAR_CORPUSBRIDGE_BACKEND", raising=False)
    assert compute_backend(None) == "slurm"
    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_BACKEND", "local")
    assert (compute_backend(None), compute_backend("auto"), compute_backend("slurm")) == ("local", "local", "slurm")
