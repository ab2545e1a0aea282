"""`corpusbridge related CONCEPT_ID`: the concept's neighbours in the co-occurrence graph, with counts and NPMI."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, existing_database, positive_int

# Below a handful of shared documents NPMI is mostly noise: two concepts seen once each, together, score 1.0 and
# would head every list.
MIN_COUNT = 5


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("related", help="concepts that co-occur with a concept (counts, NPMI)")
    parser.add_argument("concept_id", help="a concept id of the dictionary, e.g. cb:gene in the bundled sample")
    parser.add_argument("--by", choices=("document", "sentence"), default="document", help="rank by (default document)")
    parser.add_argument("--limit", type=positive_int, default=20, help="number of neighbours (default 20)")
    parser.add_argument(
        "--min-count",
        type=positive_int,
        default=MIN_COUNT,
        help=f"documents (or sentences, with --by sentence) a neighbour must share with the concept (default "
        f"{MIN_COUNT}: a pair seen once or twice has a high NPMI by chance; 1 lists every pair)",
    )
    parser.add_argument("--svg", type=Path, metavar="FILE", help="also draw the neighbourhood as an SVG file")
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.graph.query import UnknownConcept, related

    with connect(existing_database(args.db)) as conn:
        try:
            found = related(conn, args.concept_id, by=args.by, limit=args.limit, min_count=args.min_count)
        except UnknownConcept as exc:
            raise SystemExit(f"corpusbridge related: {exc}") from exc
    if args.svg:
        from corpusbridge.graph.svg import neighbourhood_svg

        args.svg.write_text(neighbourhood_svg(found), encoding="utf-8")
    if args.json:
        extra = {"min_count": args.min_count, "svg": str(args.svg) if args.svg else None}
        print(json.dumps(asdict(found) | extra, ensure_ascii=False))
        return 0
    print(f"{found.concept_id}  {found.label or ''}  ({found.docs} documents, {found.sentences} sentences)")
    width = max((len(n.concept_id) for n in found.neighbours), default=0)  # columns that hold every id
    label = max((len(n.label or "") for n in found.neighbours), default=0)
    if not found.neighbours:
        print(f"no neighbour shares {args.min_count} or more {args.by}s with it; --min-count 1 lists every pair")
    for rank, n in enumerate(found.neighbours, 1):
        print(
            f"{rank:>3}. {n.concept_id:<{width}}  {n.label or '':<{label}}  docs {n.docs:>7}  sentences "
            f"{n.sentences:>7}  npmi {_fmt(n.npmi_docs)} / {_fmt(n.npmi_sentences)}"
        )
    return 0


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:+.3f}"
