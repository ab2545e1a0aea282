"""`corpusbridge quarantine`: the records that were not loaded, and why."""

from __future__ import annotations

import argparse

from corpusbridge.cli.output import add_db_argument, add_json_argument, existing_database, positive_int

CLASSES = "SELECT error_class, count(*) FROM quarantine GROUP BY error_class ORDER BY count(*) DESC, error_class"


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

    with connect(existing_database(args.db)) as conn:
        entries = list_quarantine(conn, limit=args.limit, error_class=args.error_class)
        classes: dict[str, int] = dict(conn.execute(CLASSES).fetchall())
    if args.error_class and args.error_class not in classes:
        known = ", ".join(f"{name} ({count})" for name, count in classes.items()) or "none: nothing is quarantined"
        raise SystemExit(f"corpusbridge quarantine: no record was quarantined as {args.error_class!r}; "
                         f"classes: {known}")  # fmt: skip
    if args.json:
        print(json.dumps({"count": len(entries), "entries": [e.as_dict() for e in entries]}, ensure_ascii=False))
        return 0
    for e in entries:
        print(f"{e.error_class:<20} {e.source_file} [{e.locator}]: {e.message}")
    total = classes.get(args.error_class, 0) if args.error_class else sum(classes.values())
    print(f"{len(entries)} of {total} quarantined record(s) shown")
    return 0
