"""`corpusbridge quarantine`: the records that were not loaded, and why."""

from __future__ import annotations

import argparse

from corpusbridge.cli.output import add_db_argument, add_json_argument, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("quarantine", help="list quarantined records with their reasons")
    parser.add_argument("--limit", type=positive_int, default=100, help="at most N entries (default 100)")
    parser.add_argument("--error-class", help="only this error class (e.g. MalformedJson)")
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from corpusbridge.db import connect
    from corpusbridge.ingest.quarantine import list_quarantine

    with connect(args.db) as conn:
        entries = list_quarantine(conn, limit=args.limit, error_class=args.error_class)
    if args.json:
        print(json.dumps({"count": len(entries), "entries": [e.as_dict() for e in entries]}, ensure_ascii=False))
        return 0
    for e in entries:
        print(f"{e.error_class:<20} {e.source_file} [{e.locator}]: {e.message}")
    print(f"{len(entries)} quarantined record(s) shown")
    return 0
