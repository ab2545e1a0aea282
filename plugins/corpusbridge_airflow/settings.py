"""Where the Airflow side reads its configuration: Connections and Variables, resolved at run time only."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

POSTGRES_CONN_ID = "corpusbridge_postgres"
SOURCE_DIR_VARIABLE = "corpusbridge_source_dir"
# libpq keywords a postgres Connection's extras may carry through to psycopg.
_LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options", "application_name")


def postgres_uri(conn_id: str = POSTGRES_CONN_ID) -> str | None:
    """A conninfo for the corpusbridge database, or None to let the library use its default (embedded server)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        log.info("no Connection %r: using $CORPUSBRIDGE_DB or the embedded PostgreSQL", conn_id)
        return None
    log.info("using Connection %r (host %s, database %s)", conn_id, conn.host, conn.schema)
    return conninfo_from_fields(conn.host, conn.port, conn.login, conn.password, conn.schema, conn.extra_dejson)


def conninfo_from_fields(
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    schema: str | None,
    extra: dict[str, Any],
) -> str:
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {"host": host, "port": port, "user": login, "password": password, "dbname": schema}
    params |= {k: extra[k] for k in _LIBPQ_EXTRAS if k in extra}
    return make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")})


def source_dir(param_value: str | None) -> str:
    """The crawl directory: the run's Param, else the Variable; neither is a configuration error."""
    if param_value:
        return param_value
    from airflow.sdk import Variable

    value = Variable.get(SOURCE_DIR_VARIABLE, default=None)
    if not value:
        raise ValueError(
            f"no source directory: trigger with Param source_dir or set the Variable {SOURCE_DIR_VARIABLE!r}"
        )
    return str(value)
