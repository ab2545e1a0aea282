"""`corpusbridge export`: clean documents -> a batch of Parquet shards plus its manifest (the cluster's input)."""

from __future__ import annotations

import argparse
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit, positive_int
from corpusbridge.ingest.formats import SOURCE_FORMATS

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export clean documents as Parquet shards + manifest (default: new or changed since the last load)",
    )
    add_db_argument(parser)
    add_json_argument(parser)
    parser.add_argument("--all", action="store_true", help="every clean document the filters keep, not only pending")
    parser.add_argument("--year-from", type=int, metavar="Y", help="publication year >= Y")
    parser.add_argument("--year-to", type=int, metavar="Y", help="publication year <= Y")
    parser.add_argument(
        "--source",
        "--format",
        dest="source",
        choices=SOURCE_FORMATS,
        metavar="FORMAT",
        help=f"only documents ingested from this format: {', '.join(SOURCE_FORMATS)} (not a folder: that is "
        "`corpusbridge run --source`)",
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="at most N documents (the first N by doc id)")
    parser.add_argument("--query", metavar="Q", help="full-text query (web search syntax, as `corpusbridge search`)")
    parser.add_argument("--doc-ids", type=Path, metavar="FILE", help="only these doc ids (one per line)")
    parser.add_argument("--cleaned-from", type=_timestamp, metavar="ISO", help="clean row changed at or after ISO")
    parser.add_argument("--cleaned-to", type=_timestamp, metavar="ISO", help="clean row changed before ISO")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="batch folders go here (default $CORPUSBRIDGE_HOME/exports)"
    )
    parser.add_argument("--shard-rows", type=positive_int, default=50_000, help="documents per shard (default 50000)")
    parser.add_argument(
        "--shard-bytes", type=positive_int, default=256 * 2**20, help="target bytes per shard (default 256 MiB)"
    )
    parser.add_argument("--dictionary-version", metavar="V", help="pending for this dictionary version (default: any)")
    parser.add_argument("--model-hash", metavar="H", help="pending for this embedding model (default: any)")
    parser.add_argument(
        "--abandon",
        metavar="BATCH_ID",
        help="do not export: give up an in-flight batch that will never be loaded (its documents become pending)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.config import home_dir
    from corpusbridge.db import connect
    from corpusbridge.export.selection import SelectionError
    from corpusbridge.export.stage import BatchNotFound, abandon_batch, run_export
    from corpusbridge.runs import StageBusy

    if args.abandon:
        with connect(args.db) as conn:
            try:
                status = abandon_batch(conn, args.abandon)
            except BatchNotFound as exc:
                raise SystemExit(f"corpusbridge export: {exc}") from exc
        emit({"batch_id": args.abandon, "status": status}, args.json)
        return 0
    try:
        selection = selection_from_args(args)
    except SelectionError as exc:
        raise SystemExit(f"corpusbridge export: {exc}") from exc
    out = args.out or home_dir() / "exports"
    try:
        with connect(args.db) as conn:
            summary = run_export(
                conn, selection, out, shard_rows=args.shard_rows, shard_bytes=args.shard_bytes, progress=_log_progress
            )
    except StageBusy as exc:
        raise SystemExit(f"corpusbridge export: {exc}") from exc
    emit(summary.as_dict(), args.json)
    return 0


def selection_from_args(args: argparse.Namespace) -> Any:
    """The Selection the options describe (also what `corpusbridge run` would build)."""
    from corpusbridge.export.selection import Selection, read_doc_ids

    return Selection(
        mode="all" if args.all else "pending",
        year_from=args.year_from,
        year_to=args.year_to,
        source=args.source,
        limit=args.limit,
        query=args.query,
        doc_ids=read_doc_ids(args.doc_ids) if args.doc_ids else None,
        cleaned_from=args.cleaned_from,
        cleaned_to=args.cleaned_to,
        dictionary_version=args.dictionary_version,
        model_hash=args.model_hash,
    )


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time (e.g. 2026-12-01T00:00:00+00:00)") from None


def _log_progress(progress: Any) -> None:
    log.info("%s", progress)
