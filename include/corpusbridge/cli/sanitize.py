"""`corpusbridge sanitize`: raw documents changed since the last run -> clean documents (or rejects)."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit, existing_database, positive_int

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("sanitize", help="clean raw documents into clean_documents (incremental)")
    add_db_argument(parser)
    add_json_argument(parser)
    parser.add_argument("--batch-size", type=positive_int, default=2000, help="documents per COPY batch (default 2000)")
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="cleaning processes (default: the granted cores)"
    )
    parser.add_argument(
        "--rejects", type=positive_int, metavar="N", help="do not run: list the last N rejected documents"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="clean every raw document again, not only those changed since the last run (after the cleaning rules "
        "changed); only documents whose clean text changes are written, and so indexed and exported again",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.sanitize.stage import run_sanitize

    with connect(existing_database(args.db) if args.rejects is not None else args.db) as conn:
        if args.rejects is not None:
            return _list_rejects(conn, args.rejects, args.json)
        summary = run_sanitize(
            conn,
            batch_size=args.batch_size,
            progress=lambda p: log.info("%s", p),
            workers=args.workers,
            rebuild=args.rebuild,
        )
    emit(summary.as_dict(), args.json)
    return 0


def _list_rejects(conn: Any, limit: int, as_json: bool) -> int:
    from corpusbridge.sanitize.rejects import latest_rejects

    entries = [entry.as_dict() for entry in latest_rejects(conn, limit)]
    if as_json:
        print(json.dumps({"count": len(entries), "rejects": entries}, ensure_ascii=False))
        return 0
    for e in entries:
        detail = (e["detail"] or "").removeprefix(f"{e['doc_id']}: ")  # some details name the document already
        print(f"{e['reason']:<16} {e['doc_id']}: {detail}")
    print(f"{len(entries)} rejected document(s) shown")
    return 0
