"""Shared fixtures: the embedded PostgreSQL (real server, never a mock) and Airflow's test settings.

Airflow reads its settings at import time, so the environment is prepared here, before any test module
imports it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["fixtures_hpc"]  # the HPC sandbox and transports (tests/fixtures_hpc.py)

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="corpusbridge-airflow-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)  # one per pytest process: nothing left in /tmp
_REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(_REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

REPO_ROOT = _REPO
FIXTURES = _REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def pg_server_uri() -> Iterator[str]:
    """URI of a real PostgreSQL: `$CORPUSBRIDGE_TEST_DB` if set, else a fresh embedded server.

    Its data lives under the state folder, not pytest's basetemp: pytest prunes old basetemps, which would pull
    the data directory from under a server still used by a concurrent session. Each test gets its own database.
    """
    explicit = os.environ.get("CORPUSBRIDGE_TEST_DB")
    if explicit:
        yield explicit
        return
    from corpusbridge.config import home_dir
    from corpusbridge.db import embedded_uri

    yield embedded_uri(home_dir() / "test-pgdata")


@pytest.fixture
def db_uri(pg_server_uri: str) -> Iterator[str]:
    """A brand-new, empty database on the test server, dropped after the test."""
    import psycopg
    from psycopg import sql

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_uri, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    uri = _with_database(pg_server_uri, name)
    yield uri
    with psycopg.connect(pg_server_uri, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def db(db_uri: str):
    """A migrated connection to a fresh database."""
    from corpusbridge.db import connect

    conn = connect(db_uri)
    yield conn
    conn.close()


def _with_database(uri: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(uri)
    params["dbname"] = name
    return make_conninfo(**params)
