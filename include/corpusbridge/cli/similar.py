"""`corpusbridge similar DOC_ID`: the nearest documents by vector, with titles and cosine similarity: exact from the
kNN graph when one is loaded (`corpusbridge graph neighbors`), from the HNSW index otherwise; `--json` says which
(`"source": "knn_graph" | "hnsw"`)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, positive_int


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("similar", help="nearest neighbours of a document by its embedding")
    parser.add_argument("doc_id", help="e.g. doi:10.1000/xyz")
    parser.add_argument("--limit", type=positive_int, default=10, help="number of neighbours (default 10)")
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.cli.output import look_up_document
    from corpusbridge.graph.neighbors_query import similar

    found = look_up_document("similar", args.db, similar, args.doc_id, args.limit)
    hits = found.neighbours
    if args.json:
        out = {"doc_id": args.doc_id, "source": found.source, "graph_id": found.graph_id,
               "neighbours": [asdict(h) for h in hits]}  # fmt: skip
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"({'exact kNN graph' if found.source == 'knn_graph' else 'HNSW index, approximate'})")
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:>3}. {hit.similarity:.4f}  {hit.doc_id}  {hit.title or '(untitled)'}")
    return 0
