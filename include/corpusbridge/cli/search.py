"""`corpusbridge search "query"`: ranked hits (id, title, year, score, snippet)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from corpusbridge.cli.index import add_backend_arguments, es_client_for
from corpusbridge.cli.output import add_db_argument, add_json_argument, existing_database, positive_int


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("search", help='full-text search (words, "phrases", -exclusions, a or b)')
    parser.add_argument("query", help='e.g. "mild asthma" budesonide -children')
    parser.add_argument("--limit", type=positive_int, default=10, help="number of hits (default 10)")
    add_db_argument(parser)
    add_json_argument(parser)
    add_backend_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.index.search import search

    client = es_client_for(args)
    try:
        if args.backend == "postgres":
            with connect(existing_database(args.db)) as conn:
                hits = search(conn, args.query, limit=args.limit)
        else:
            hits = search(None, args.query, limit=args.limit, backend="elasticsearch", es_client=client)
    except ValueError as exc:
        raise SystemExit(f"corpusbridge search: {exc}") from exc
    if args.json:
        print(json.dumps({"query": args.query, "backend": args.backend, "hits": [asdict(h) for h in hits]}))
    else:
        _print_hits(hits)
    return 0


def _print_hits(hits: list) -> None:
    if not hits:
        print("no hits")
    for rank, hit in enumerate(hits, 1):
        year = hit.year if hit.year is not None else "n.d."
        print(f"{rank:>3}. {hit.score:.4f}  {hit.doc_id}  ({year})  {hit.title or '(untitled)'}")
        print(f"     {hit.snippet}")
