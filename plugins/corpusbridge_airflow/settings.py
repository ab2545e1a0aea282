"""Where the Airflow side reads its configuration: Connections and Variables, resolved at run time only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

POSTGRES_CONN_ID = "corpusbridge_postgres"
SOURCE_DIR_VARIABLE = "corpusbridge_source_dir"
# libpq keywords a postgres Connection's extras may carry through to psycopg.
_TOLD: set[str] = set()  # Connections whose absence this process has logged
_LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options", "application_name")


def postgres_uri(conn_id: str = POSTGRES_CONN_ID) -> str | None:
    """A conninfo for the corpusbridge database, or None to let the library use its default (embedded server)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        from corpusbridge.db import describe

        if conn_id not in _TOLD:  # once per process: a task asks several times
            _TOLD.add(conn_id)
            log.info("no Connection %r: using %s (the library's default: $CORPUSBRIDGE_DB, else the embedded "
                     "server under $CORPUSBRIDGE_HOME)", conn_id, describe(None))  # fmt: skip
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


# --- paths a trigger may name -------------------------------------------------------------------------------------

# Triggering a DAG is a lower permission than editing Connections or Variables, yet four Params name paths: files
# the worker reads (source_dir, dictionary) and programs the cluster runs (container, cluster_python). On a shared
# deployment an admin lists the folders they may name; unset, any path goes (a single-user workstation).
WORKSTATION_ROOTS_VARIABLE = "corpusbridge_param_roots"
CLUSTER_ROOTS_VARIABLE = "corpusbridge_cluster_param_roots"


class ParamPathRefused(PermissionError):
    """A Param names a path outside the folders the deployment allows; the message names the Variable."""


def param_path(value: str, param: str, *, cluster: bool = False) -> str:
    """`value` (a Param's path) if the deployment allows it: under a root of the Variable, or no roots set."""
    import posixpath

    from airflow.sdk import Variable

    variable = CLUSTER_ROOTS_VARIABLE if cluster else WORKSTATION_ROOTS_VARIABLE
    roots = [r.strip() for r in str(Variable.get(variable, default=None) or "").split(",") if r.strip()]
    if not roots:
        return value
    if cluster:  # a path on the cluster: judged as text, never followed here
        path = posixpath.normpath(value)
        inside = value.startswith("/") and any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)
    else:
        resolved = Path(value).resolve()
        inside = any(resolved.is_relative_to(Path(r).resolve()) for r in roots)
    if not inside:
        raise ParamPathRefused(
            f"Param {param} {value!r} is outside the folders Variable {variable!r} allows ({', '.join(roots)}); "
            "name a path under one of them, or ask an admin to set the Variable instead of the Param"
        )
    return value


def refused_params(params: Any, *, cluster: bool) -> list[str]:
    """Why each path Param of a run is refused (empty: all allowed); a preflight fails the run with them."""
    checks = [("dictionary", False)] + ([("container", True), ("cluster_python", True)] if cluster else [])
    refused = []
    for name, on_cluster in checks:
        if params.get(name):
            try:
                param_path(str(params[name]), name, cluster=on_cluster)
            except ParamPathRefused as exc:
                refused.append(str(exc))
    return refused


def source_dir(param_value: str | None) -> str:
    """The crawl directory: the run's Param (if allowed), else the Variable; neither is a configuration error."""
    if param_value:
        return param_path(param_value, "source_dir")
    from airflow.sdk import Variable

    value = Variable.get(SOURCE_DIR_VARIABLE, default=None)
    if not value:
        raise ValueError(
            f"no source directory: trigger with Param source_dir or set the Variable {SOURCE_DIR_VARIABLE!r}"
        )
    return str(value)


# --- the compute round trip (corpus_compute) ---------------------------------------------------------------------

HPC_CONN_ID = "corpusbridge_hpc"
BACKEND_VARIABLE = "corpusbridge_backend"
DICTIONARY_VARIABLE = "corpusbridge_dictionary"
HPC_PYTHON_VARIABLE = "corpusbridge_hpc_python"
WORK_DIR_VARIABLE = "corpusbridge_work_dir"


def compute_backend(param_value: str | None) -> str:
    """The run's backend: its Param, unless `auto` (the default), then the Variable (scheduled and Asset-triggered
    runs have no Param of their own: a workstation without a cluster sets it to `local`), else `slurm`."""
    if param_value and param_value != "auto":
        return param_value
    from airflow.sdk import Variable

    return str(Variable.get(BACKEND_VARIABLE, default=None) or "slurm")


def configured_source_dir(param_value: str | None) -> str | None:
    """The crawl directory if one is configured (Param, else Variable); None lets a run skip instead of failing."""
    try:
        return source_dir(param_value)
    except ValueError:
        return None


def dictionary_terms(param_value: str | None) -> str | None:
    """The concept dictionary's terms file: the run's Param, else the Variable; None when neither is set."""
    if param_value:
        return param_path(param_value, "dictionary")
    from airflow.sdk import Variable

    value = Variable.get(DICTIONARY_VARIABLE, default=None)
    return str(value) if value else None


def has_connection(conn_id: str) -> bool:
    """Whether an Airflow Connection exists (metadata DB, `AIRFLOW_CONN_*` or a secrets backend)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        Connection.get(conn_id)
    except AirflowNotFoundException:
        return False
    return True


def cluster_python(param_value: str | None) -> str:
    """The interpreter that runs the payload on a node (no container): Param, else Variable, else `python3`."""
    if param_value:
        return param_path(param_value, "cluster_python", cluster=True)
    from airflow.sdk import Variable

    return str(Variable.get(HPC_PYTHON_VARIABLE, default=None) or "python3")


def work_dir() -> Path:
    """Where exports, fetched results and cached dictionaries live: the Variable, else `$CORPUSBRIDGE_HOME`.

    The default is the CLI's folder too, so `corpusbridge run` and the DAG share one dictionary cache and one set of
    export folders instead of building and writing each twice.
    """
    from airflow.sdk import Variable

    from corpusbridge.config import home_dir

    configured = Variable.get(WORK_DIR_VARIABLE, default=None)
    path = Path(configured) if configured else home_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path
