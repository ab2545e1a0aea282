"""`corpusbridge index`: bring the full-text index up to date with the clean documents."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit

log = logging.getLogger(__name__)


def add_backend_arguments(parser: Any) -> None:
    """`--backend` and `--es-url`, shared with `corpusbridge search`."""
    parser.add_argument(
        "--backend",
        choices=("postgres", "elasticsearch"),
        default="postgres",
        help="postgres (embedded default) or elasticsearch",
    )
    parser.add_argument(
        "--es-url", default=os.environ.get("ELASTICSEARCH_URL"), help="Elasticsearch URL (default: $ELASTICSEARCH_URL)"
    )


def es_client_for(args: argparse.Namespace) -> Any:
    if args.backend != "elasticsearch":
        return None
    if not args.es_url:
        raise SystemExit("corpusbridge: --backend elasticsearch needs --es-url or $ELASTICSEARCH_URL")
    from corpusbridge.index.elastic import connect

    return connect(args.es_url)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("index", help="index clean documents for search (incremental)")
    add_db_argument(parser)
    add_json_argument(parser)
    add_backend_arguments(parser)
    parser.add_argument("--rebuild", action="store_true", help="re-index every document (Elasticsearch: alias swap)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.index.stage import run_index

    with connect(args.db) as conn:
        summary = run_index(
            conn,
            args.backend,
            es_client=es_client_for(args),
            rebuild=args.rebuild,
            progress=lambda p: log.info("%s", p),
        )
    emit(summary.as_dict(), args.json)
    return 0 if summary.docs_failed == 0 else 1
