"""The document similarity graph end to end, without Airflow: export the loaded vectors, run the kNN job (local or
SLURM), load its verified parts exactly once. `run_knn_graph` is what `corpusbridge graph neighbors` calls; the DAG
calls its pieces as tasks (`plan_knn`, then the local job or a deferrable SlurmOperator, then `load_neighbors`).

The work folder is `<home>/knn/vectors-<sha16>/k<k>-p<parts>/`: the same vectors, k and split find the same parts,
so a rerun computes nothing and loads nothing (the current graph's result is in the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from corpusbridge.compute.neighbors import KnnWork, run_neighbors_local, run_neighbors_slurm_on
from corpusbridge.graph.knn_files import KnnInput, export_vectors
from corpusbridge.graph.neighbors import DEFAULT_K
from corpusbridge.graph.neighbors_load import current_graph_of, load_neighbors
from corpusbridge.load.ledger import Provenance


class KnnJobFailed(RuntimeError):
    """Some parts of the kNN job failed; the message names each with its reason (a rerun computes only those)."""


@dataclass(frozen=True)
class KnnOptions:
    backend: Literal["local", "slurm"] = "local"
    k: int = DEFAULT_K
    parts: int = 1
    device: str = "auto"
    root: Path | None = None  # default <CORPUSBRIDGE_HOME>/knn
    cluster: Any = None  # ClusterSettings for the slurm backend
    python: str | None = None  # the interpreter that runs the payload (nodes: with corpusbridge installed)
    slurm: dict[str, Any] = field(default_factory=dict)  # run_neighbors_slurm keyword arguments (options, label, ...)


@dataclass(frozen=True)
class KnnPlan:
    """The exported vectors, the work over them, where its parts land, which are still to compute, and the current
    graph's id when it is this work's graph already (then nothing needs computing or loading)."""

    work: KnnWork
    out: Path
    pending: list[int]
    current: int | None

    @property
    def source(self) -> KnnInput:
        return self.work.source


def knn_out_dir(root: Path, source: KnnInput, k: int, parts: int) -> Path:
    """`<root>/vectors-<sha16>/k<k>-p<parts>`: the same vectors, k and split find the same parts."""
    return root / source.path.stem / f"k{k}-p{parts}"


def plan_knn(conn: psycopg.Connection, root: Path, *, k: int, parts: int, device: str = "auto") -> KnnPlan:
    """Export the loaded vectors and say what the kNN job over them has left to do."""
    source = export_vectors(conn, root)
    work = KnnWork(source, k=k, parts=parts, device=device)
    out = knn_out_dir(root, source, k, parts)
    return KnnPlan(work, out, work.pending(out), current_graph_of(conn, source.sha256, k, parts))


def run_knn_graph(conn: psycopg.Connection, options: KnnOptions, provenance: Provenance) -> dict[str, Any]:
    """Export, compute, load; returns what `--json` prints (the compute summary and the load)."""
    from corpusbridge.config import home_dir

    root = options.root or home_dir() / "knn"
    plan = plan_knn(conn, root, k=options.k, parts=options.parts, device=options.device)
    source, work, out = plan.source, plan.work, plan.out
    if options.backend == "slurm":
        if options.cluster is None:
            raise ValueError("the slurm backend needs the cluster settings (the corpusbridge_hpc connection)")
        summary = run_neighbors_slurm_on(
            options.cluster, work, out, python=options.python or "python3", **options.slurm
        )
    else:
        summary = run_neighbors_local(work, out, python=options.python)
    if summary.failed:
        reasons = "; ".join(f"part {i}: {why}" for i, why in sorted(summary.failed.items()))
        raise KnnJobFailed(f"kNN job over {source.path.name}: {len(summary.failed)} part(s) failed: {reasons}")
    loaded = load_neighbors(conn, out, input_sha256=source.sha256, k=options.k, parts=options.parts,
                            provenance=provenance, backend=options.backend)  # fmt: skip
    return {"input": str(source.path), "vectors": source.rows, "compute": summary.as_dict(), "load": loaded.as_dict()}
