"""corpus_compute's graph tasks: the concept graph's summary after a load, and the document similarity graph (the
exact kNN job, locally or as a deferrable SlurmOperator, in the same shape as the compute step: prepare, branch,
local | request -> SLURM, load). Each raises a skip when its Param is off or nothing changed, so its Asset gets an
event exactly when the graph it names changed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corpusbridge_airflow import settings
from corpusbridge_airflow.stages import operator_request

log = logging.getLogger(__name__)

# What each kNN array index writes (graph/knn_files.py: part_name, part_entry_name), fetched into the plan's folder.
NEIGHBORS_PATTERNS = ("neighbors-*.parquet", "neighbors-*.json")


def concept_graph_stage(params: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """The graph's size; skipped (no Asset event) when Param `graph` is off or this run loaded no shard."""
    from airflow.sdk.exceptions import AirflowSkipException

    from corpusbridge.db import connect
    from corpusbridge.graph.summary import graph_summary

    if not params.get("graph", True):
        raise AirflowSkipException("Param 'graph' is off: the concept graph is not reported")
    with connect(settings.postgres_uri()) as conn:
        summary = graph_summary(conn, run_id)
    log.info("concept graph: %d concepts, %d co-occurring pairs over %d documents (%d sentences); this run loaded "
             "%d shard(s) into it", summary.concepts, summary.pairs, summary.docs, summary.sentences,
             summary.shards_loaded)  # fmt: skip
    if not summary.changed:
        raise AirflowSkipException(
            f"concept graph unchanged by run {run_id} (no shard loaded): {summary.pairs} pairs, "
            f"{summary.concepts} concepts over {summary.docs} documents; no Asset event"
        )
    return summary.as_dict()


def neighbors_prepare_stage(params: Mapping[str, Any]) -> dict[str, Any]:
    """Export the loaded vectors and plan the kNN job over them; skipped (nothing downstream runs, no Asset event)
    when Param `neighbors` is off or the current graph is this one already (same vectors, k and split)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from corpusbridge.db import connect
    from corpusbridge.graph.neighbors_job import plan_knn

    if not params.get("neighbors"):
        raise AirflowSkipException("Param 'neighbors' is off: the document similarity graph is not computed")
    k, parts = int(params.get("k") or 10), int(params.get("knn_parts") or 1)
    with connect(settings.postgres_uri()) as conn:
        plan = plan_knn(conn, settings.work_dir() / "knn", k=k, parts=parts)
    source = plan.source
    if plan.current is not None:
        raise AirflowSkipException(
            f"the kNN graph of {source.path.name} (k={k}, {parts} parts) is the current graph already (graph "
            f"{plan.current}): nothing computed or loaded; no Asset event"
        )
    prepared = {
        "backend": settings.compute_backend(params.get("backend")),
        "input": str(source.path), "input_sha256": source.sha256, "vectors": source.rows,
        "dimension": source.dimension, "k": k, "parts": parts, "device": plan.work.device,
        "out_dir": str(plan.out), "pending": plan.pending,
    }  # fmt: skip
    log.info("kNN plan: %d vectors of %s, k=%d, %d part(s), %d to compute (%s backend, device %s)", source.rows,
             source.path.name, k, parts, len(plan.pending), prepared["backend"], plan.work.device)  # fmt: skip
    return prepared


def neighbors_next(prepared: Mapping[str, Any]) -> str:
    """The branch after the plan: straight to the load when every part is verified here already (a run that
    computed them but did not load), else the run's backend."""
    if not prepared["pending"]:
        return "neighbors_load"
    return "neighbors_local" if prepared["backend"] == "local" else "neighbors_request"


def neighbors_local_stage(prepared: Mapping[str, Any]) -> dict[str, Any]:
    """The parts still pending, as subprocesses here; a failed part fails the task, naming it."""
    from corpusbridge.compute.neighbors import run_neighbors_local
    from corpusbridge.graph.neighbors_job import KnnJobFailed

    summary = run_neighbors_local(_work(prepared), Path(prepared["out_dir"]))
    if summary.failed:
        reasons = "; ".join(f"part {i}: {why}" for i, why in sorted(summary.failed.items()))
        raise KnnJobFailed(f"kNN job over {prepared['input']}: {len(summary.failed)} part(s) failed: {reasons}")
    return summary.as_dict()


def neighbors_request(prepared: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The SlurmOperator's run-time arguments: one array index per part, the exported vectors staged in, the parts
    fetched verified into the plan's folder; a one-element list (one job) to expand.

    `work_key` names the job and scratch dir after the vectors, k and split (with these arguments) instead of the
    run: a retry, and a later run of the same work whose parts never reached the workstation (a fetch or the wait
    that failed), re-attach to the job or find its indices done; nothing is submitted twice."""
    from corpusbridge.compute.neighbors import knn_array_argv
    from corpusbridge.compute.slurm import OUT_FOLDER

    vectors = Path(str(prepared["input"]))
    # Relative to the scratch dir, the job's working dir, where stage_in puts the vectors under their own name.
    command = knn_array_argv(
        _work(prepared), settings.cluster_python(params.get("cluster_python")), vectors.name, OUT_FOLDER
    )
    request = operator_request(
        params,
        command=command,
        array_size=int(prepared["parts"]),
        stage_in=[str(vectors)],
        stage_out=[f"{OUT_FOLDER}/{pattern}" for pattern in NEIGHBORS_PATTERNS],
        local_output_dir=str(prepared["out_dir"]),
        work_key=f"{vectors.stem}-k{prepared['k']}-p{prepared['parts']}",
    )
    log.info("SLURM request for the kNN job over %s: %s", vectors.name, request)
    return [request]


def neighbors_load_stage(prepared: Mapping[str, Any], run_id: str, scratch: str | None = None) -> dict[str, Any]:
    """Verify every part (sha256, input, k, split) and load them once as the current graph; skipped (no Asset
    event) when that graph is current already.

    `scratch`: the SlurmOperator's scratch dir when this run fetched the parts. Parts that do not verify get their
    completion markers and outputs removed there (as the library's slurm backend does), or every later run would
    re-attach, find them done and fetch the same bad files."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from corpusbridge.db import connect
    from corpusbridge.graph.neighbors_load import NeighborsLoadError, load_neighbors
    from corpusbridge.load.ledger import Provenance

    try:
        with connect(settings.postgres_uri()) as conn:
            loaded = load_neighbors(
                conn, Path(prepared["out_dir"]), input_sha256=prepared["input_sha256"], k=int(prepared["k"]),
                parts=int(prepared["parts"]), provenance=Provenance(run_label=run_id), backend=prepared["backend"],
            )  # fmt: skip
    except NeighborsLoadError as exc:
        # A retry of this task would read the same files: fail now; the next run's plan finds these parts pending.
        message = str(exc)
        if scratch:
            bad = _forget_on_cluster(prepared, scratch)
            message += f". Parts {bad} were removed from the SLURM scratch dir {scratch}: the next run computes them"
        raise AirflowFailException(message) from None
    log.info("kNN graph %d: %s, %d documents, %d edges", loaded.graph_id,
             "loaded" if loaded.loaded else "already the current graph", loaded.docs, loaded.edges)  # fmt: skip
    if not loaded.loaded:
        raise AirflowSkipException(
            f"the kNN graph of {prepared['input']} is loaded already (graph {loaded.graph_id}); no Asset event"
        )
    return {"input": prepared["input"], "vectors": prepared["vectors"], "k": prepared["k"],
            "parts": prepared["parts"], "backend": prepared["backend"], "load": loaded.as_dict()}  # fmt: skip


def _forget_on_cluster(prepared: Mapping[str, Any], scratch: str) -> list[int]:
    from corpusbridge.compute.neighbors import forget_unverified
    from corpusbridge_airflow.hooks.slurm import SlurmHook

    hook = SlurmHook()
    try:
        everything = list(range(int(prepared["parts"])))
        return forget_unverified(hook.transport, scratch, _work(prepared), Path(prepared["out_dir"]), everything, {})
    finally:
        hook.close()


def _work(prepared: Mapping[str, Any]) -> Any:
    from corpusbridge.compute.neighbors import KnnWork
    from corpusbridge.graph.knn_files import KnnInput

    source = KnnInput(Path(prepared["input"]), prepared["input_sha256"], int(prepared["vectors"]),
                      int(prepared["dimension"]))  # fmt: skip
    return KnnWork(source, k=int(prepared["k"]), parts=int(prepared["parts"]), device=prepared["device"])
