"""corpus_compute's graph tasks: the concept graph's summary after a load, and the document similarity graph (the
exact kNN job, locally or on SLURM). Each raises a skip when its Param is off or nothing changed, so its Asset
gets an event exactly when the graph it names changed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from corpusbridge_airflow import settings

log = logging.getLogger(__name__)


def concept_graph_stage(params: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """The graph's size; skipped (no Asset event) when Param `graph` is off or this run loaded no shard."""
    from airflow.sdk.exceptions import AirflowSkipException

    from corpusbridge.db import connect
    from corpusbridge.graph.summary import graph_summary

    if not params.get("graph", True):
        raise AirflowSkipException("Param 'graph' is off: the concept graph is not reported")
    with connect(settings.postgres_uri()) as conn:
        summary = graph_summary(conn, run_id)
    log.info("concept graph: %s", summary)
    if not summary.changed:
        raise AirflowSkipException(
            f"concept graph unchanged by run {run_id} (no shard loaded): {summary.pairs} pairs, "
            f"{summary.concepts} concepts over {summary.docs} documents; no Asset event"
        )
    return summary.as_dict()


def neighbors_stage(params: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Export the loaded vectors, run the kNN job on the run's backend, load it once; skipped when Param
    `neighbors` is off or the graph is the one already loaded (no Asset event)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from corpusbridge.db import connect
    from corpusbridge.graph.neighbors_job import run_knn_graph
    from corpusbridge.load.ledger import Provenance

    if not params.get("neighbors"):
        raise AirflowSkipException("Param 'neighbors' is off: the document similarity graph is not computed")
    options = _knn_options(params)
    with connect(settings.postgres_uri()) as conn:
        done = run_knn_graph(conn, options, Provenance(run_label=run_id))
    log.info("kNN graph: %s", done)
    if not done["load"]["loaded"]:
        raise AirflowSkipException(
            f"the kNN graph of these vectors (k={options.k}) is loaded already (graph {done['load']['graph_id']}): "
            "nothing computed or loaded; no Asset event"
        )
    return done


def _knn_options(params: Mapping[str, Any]) -> Any:
    from corpusbridge.graph.neighbors_job import KnnOptions

    backend = params.get("backend") or "slurm"
    root = settings.work_dir() / "knn"
    k, parts = int(params.get("k") or 10), int(params.get("knn_parts") or 1)
    if backend != "slurm":
        return KnnOptions("local", k, parts, root=root)
    from corpusbridge_airflow.hooks.slurm import SlurmHook

    slurm: dict[str, Any] = {"options": {"time": params.get("time_limit") or "01:00:00"}}
    if params.get("partition"):
        slurm["options"]["partition"] = params["partition"]
    cluster = SlurmHook().settings
    if params.get("container"):
        from corpusbridge.hpc.script import Container

        slurm["container"] = Container(str(params["container"]), cluster.container_runtime or "apptainer")
    python = settings.cluster_python(params.get("cluster_python"))
    return KnnOptions("slurm", k, parts, root=root, cluster=cluster, python=python, slurm=slurm)
