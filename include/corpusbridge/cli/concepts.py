"""`corpusbridge concepts DOC_ID`: the concepts found in a document, with offsets, matched text and sentences;
`corpusbridge concepts --export FILE.parquet`: every loaded concept row, to recount the graph elsewhere."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, existing_database


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("concepts", help="concepts found in a document (offsets, sentence)")
    parser.add_argument("doc_id", nargs="?", help="e.g. doi:10.1000/xyz")
    parser.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write every (doc_id, concept_id, start, end, sentence) row to a Parquet file instead",
    )
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.export:
        return export_rows(args)
    if not args.doc_id:
        raise SystemExit("corpusbridge concepts: give a DOC_ID, or --export FILE.parquet for every loaded row")
    from corpusbridge.cli.output import look_up_document
    from corpusbridge.load.lookup import document_concepts

    found = look_up_document("concepts", args.db, document_concepts, args.doc_id)
    if args.json:
        print(json.dumps(asdict(found), ensure_ascii=False))
        return 0
    print(f"{found.doc_id}  {found.title or '(untitled)'}  ({len(found.concepts)} concepts, batch {found.batch_id})")
    width = max((len(hit.concept_id) for hit in found.concepts), default=0)
    for hit in found.concepts:
        print(f"  {hit.concept_id:<{width}} [{hit.start}:{hit.end}] sentence {hit.sentence}: {hit.matched!r}")
        if hit.sentence_text:
            print(f"      {' '.join(hit.sentence_text.split())}")  # a title's blank line would break the indent
    return 0


def export_rows(args: argparse.Namespace) -> int:
    from corpusbridge.cli.output import emit
    from corpusbridge.db import connect
    from corpusbridge.graph.export import export_concept_rows

    with connect(existing_database(args.db)) as conn:
        rows = export_concept_rows(conn, args.export)
    emit({"rows": rows, "file": str(args.export)}, args.json)
    return 0
