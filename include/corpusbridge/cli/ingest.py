"""`corpusbridge ingest SOURCE_DIR`: read new and changed crawled files into raw_documents."""

from __future__ import annotations

import argparse
import logging

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit, positive_int

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ingest", help="ingest crawled files (incremental, idempotent)")
    parser.add_argument("source_dir", metavar="SOURCE_DIR", help="directory tree of crawled files")
    parser.add_argument(
        "--limit-files",
        type=positive_int,
        default=None,
        metavar="N",
        help="read at most N files (prototype on a subset)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="parser processes (default: cores available)"
    )
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.ingest.stage import IngestOptions, run_ingest

    with connect(args.db) as conn:
        options = IngestOptions(limit_files=args.limit_files, workers=args.workers)
        summary = run_ingest(conn, args.source_dir, options, progress=lambda p: log.info("%s", p))
    emit(summary.as_dict(), args.json)
    return 0
