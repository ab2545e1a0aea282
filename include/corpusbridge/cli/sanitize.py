"""`corpusbridge sanitize`: raw documents changed since the last run -> clean documents (or rejects)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("sanitize", help="clean raw documents into clean_documents (incremental)")
    add_db_argument(parser)
    add_json_argument(parser)
    parser.add_argument("--batch-size", type=int, default=2000, help="documents per COPY batch (default 2000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.sanitize.stage import run_sanitize

    with connect(args.db) as conn:
        summary = run_sanitize(conn, batch_size=args.batch_size, progress=_log_progress)
    emit(summary.as_dict(), args.json)
    return 0


def _log_progress(progress: Any) -> None:
    log.info("sanitized %d/%d documents (%.0f docs/s)", progress.docs_done, progress.docs_total,
             progress.docs_per_second)
