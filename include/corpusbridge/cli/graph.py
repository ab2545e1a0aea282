"""`corpusbridge graph export|rebuild`: the concept graph as files (Parquet nodes/edges or GraphML), or recounted."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("graph", help="the concept co-occurrence graph: export or rebuild")
    actions = parser.add_subparsers(dest="graph_action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="nodes.parquet + edges.parquet, or graph.graphml")
    export.add_argument("--out", type=Path, required=True, help="folder to write into")
    export.add_argument("--min-docs", type=int, default=1, help="keep concepts in at least K documents (default 1)")
    export.add_argument("--min-count", type=int, default=1, help="co-occurrences an edge needs for NPMI (default 1)")
    export.add_argument("--format", choices=("parquet", "graphml"), default="parquet")
    rebuild = actions.add_parser("rebuild", help="count the graph again from every loaded concept row")
    for sub in (export, rebuild):
        add_db_argument(sub)
        add_json_argument(sub)
    export.set_defaults(func=run_export)
    rebuild.set_defaults(func=run_rebuild)


def run_export(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.graph.export import export_graph

    with connect(args.db) as conn:
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
