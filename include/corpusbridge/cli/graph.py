"""`corpusbridge graph export|rebuild|neighbors|recall`: the concept graph as files (Parquet nodes/edges or GraphML)
or recounted; the document similarity graph (exact kNN, local or on SLURM) computed and loaded, and HNSW's recall@k
against it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit, existing_database, positive_int


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("graph", help="the concept and document graphs: export, rebuild, neighbors, recall")
    actions = parser.add_subparsers(dest="graph_action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="nodes.parquet + edges.parquet, or graph.graphml")
    export.add_argument("--out", type=Path, required=True, help="folder to write into")
    export.add_argument("--min-docs", type=int, default=1, help="keep concepts in at least K documents (default 1)")
    export.add_argument("--min-count", type=int, default=1, help="co-occurrences an edge needs for NPMI (default 1)")
    export.add_argument("--format", choices=("parquet", "graphml"), default="parquet",
                        help="nodes.parquet + edges.parquet, or one graph.graphml (default parquet)")  # fmt: skip
    rebuild = actions.add_parser("rebuild", help="count the graph again from every loaded concept row")
    neighbors = actions.add_parser("neighbors", help="exact k nearest neighbours of every document, loaded once")
    neighbors.add_argument(
        "--backend", choices=("local", "slurm"), default="local", help="where the kNN job runs (default local)"
    )
    neighbors.add_argument("--k", type=positive_int, default=10, help="neighbours per document (default 10)")
    neighbors.add_argument("--parts", type=positive_int, default=1, help="array indices (blocks of queries; default 1)")
    neighbors.add_argument("--device", default="auto", help="auto (cuda when torch sees a GPU), cpu or cuda")
    neighbors.add_argument("--out", type=Path, help="work folder (default: $CORPUSBRIDGE_HOME/knn)")
    neighbors.add_argument(
        "--hpc-conn", metavar="URI", help="cluster connection (default: $AIRFLOW_CONN_CORPUSBRIDGE_HPC)"
    )
    neighbors.add_argument("--container", metavar="IMAGE", help="slurm: run the payload in this image on the nodes")
    neighbors.add_argument("--slurm-python", default="python3", help="python with corpusbridge on the compute nodes")
    neighbors.add_argument("--run-label", help="recorded on the graph's ledger row (default: cli__<UTC time>)")
    recall = actions.add_parser("recall", help="recall@k of the HNSW index against the loaded exact kNN graph")
    recall.add_argument("--k", type=positive_int, default=10, help="neighbours compared per document (default 10)")
    recall.add_argument("--sample", type=positive_int, default=200, help="documents to check (default 200)")
    for sub in (export, rebuild, neighbors, recall):
        add_db_argument(sub)
        add_json_argument(sub)
    export.set_defaults(func=run_export)
    rebuild.set_defaults(func=run_rebuild)
    neighbors.set_defaults(func=run_neighbors)
    recall.set_defaults(func=run_recall)


def run_export(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.graph.export import export_graph

    with connect(existing_database(args.db)) as conn:
        done = export_graph(conn, args.out, min_docs=args.min_docs, fmt=args.format, min_count=args.min_count)
    emit(done.as_dict(), args.json)
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.graph.load import rebuild_graph
    from corpusbridge.graph.query import totals

    with connect(args.db) as conn:
        pairs = rebuild_graph(conn)
        universe = totals(conn)
    emit({"pairs": pairs, "docs": universe.docs, "sentences": universe.sentences}, args.json)
    return 0


def run_neighbors(args: argparse.Namespace) -> int:
    from corpusbridge.cli.load import cli_run_label
    from corpusbridge.db import connect
    from corpusbridge.graph.knn_files import KnnInputError
    from corpusbridge.graph.neighbors_job import KnnJobFailed, KnnOptions, run_knn_graph
    from corpusbridge.graph.neighbors_load import NeighborsLoadError
    from corpusbridge.load.ledger import Provenance

    cluster = _cluster(args) if args.backend == "slurm" else None
    python = args.slurm_python if args.backend == "slurm" else None
    slurm: dict[str, Any] = {}
    if cluster is not None and args.container:
        from corpusbridge.hpc.script import Container

        runtime = cluster.container_runtime or "apptainer"
        slurm["container"] = Container(args.container, runtime, gpu=args.device == "cuda")
    options = KnnOptions(args.backend, args.k, args.parts, args.device, args.out, cluster, python, slurm)
    with connect(args.db) as conn:
        try:
            done = run_knn_graph(conn, options, Provenance(args.run_label or cli_run_label()))
        except (KnnInputError, KnnJobFailed, NeighborsLoadError) as exc:
            emit({"status": "failed", "error": f"{type(exc).__name__}: {exc}"}, args.json)
            return 1
    emit(done, args.json)
    return 0


def _cluster(args: argparse.Namespace) -> Any:
    from corpusbridge.cli.run import _cluster as run_cluster

    return run_cluster(args)


def run_recall(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.graph.neighbors_query import hnsw_recall

    with connect(existing_database(args.db)) as conn:
        try:
            found = hnsw_recall(conn, k=args.k, sample=args.sample)
        except (LookupError, ValueError) as exc:
            raise SystemExit(f"corpusbridge graph recall: {exc}") from exc
    emit(found.as_dict(), args.json)
    return 0
