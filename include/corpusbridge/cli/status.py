"""`corpusbridge status`: per-stage run counts, table sizes and the last load's reconciliation."""

from __future__ import annotations

import argparse
import json
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, existing_database


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="where the pipeline stands: runs per stage, table sizes, reconciliation"
    )
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.load.status import pipeline_status

    with connect(existing_database(args.db)) as conn:
        status = {"database": _database(args.db)} | pipeline_status(conn)
    if args.json:
        print(json.dumps(status, default=str))
    else:
        _print(status)
    return 0


def _database(explicit: str | None) -> str:
    from corpusbridge.db import describe

    text = describe(explicit)
    return f"{text} ($CORPUSBRIDGE_HOME or ./.corpusbridge)" if text.startswith("embedded") else text


# The counts that say what a stage's last run did, in the words of its log's reconciliation line.
_COUNT_LINES = {
    "ingest": "files {files_seen} ({files_new} new, {files_changed} changed); records {records_seen} = "
    "{records_loaded} loaded + {records_duplicate} duplicate + {records_quarantined} quarantined",
    "sanitize": "{docs_in} in = {docs_clean} clean + {docs_rejected} rejected",
    "index": "{docs_in} in: {docs_indexed} indexed, {docs_deleted} deleted, {docs_failed} failed ({backend})",
    "export": "batch {batch_id}: {docs_exported} documents in {shards} shards",
    "load": "batch {batch_id}: {docs_processed} processed, {docs_loaded} loaded ({shards_loaded} shards loaded, "
    "{shards_skipped} already in the ledger)",
}


def _last_counts(stage: str, counts: dict[str, Any]) -> str:
    """One line of the last run's counts; empty when the run recorded none (it failed early, or an old run)."""
    try:
        return _COUNT_LINES[stage].format(**counts)
    except (KeyError, IndexError):
        return ""


def _print(status: dict[str, Any]) -> None:
    print(f"database: {status['database']}")
    for stage, info in status["stages"].items():
        last = info.get("last_run", {})
        runs = ", ".join(f"{n} {s}" for s, n in info["runs"].items())
        print(f"{stage:<9} {runs}; last run {last.get('run_id')} {last.get('status')} {last.get('finished_at') or ''}")
        counts = _last_counts(stage, last.get("counts") or {})
        if counts:
            print(f"{'':<9} {counts}")
        if last.get("error"):
            print(f"{'':<9} error: {str(last['error']).splitlines()[0][:200]}")
    for name, size in status["tables"].items():
        print(f"{name:<24} ~{size['rows_estimate']:>12,} rows {size['bytes'] / 2**20:>10.1f} MiB")
    for batch in status["unfinished_batches"]:
        print(
            f"unfinished batch {batch['batch_id']}: {batch['shards_loaded']} of {batch['shards']} shards loaded "
            f"({batch['docs']} documents, exported {batch['exported_at']}); finish it by running again with the same "
            "options or `corpusbridge load --manifest ...`, or give it up: `corpusbridge export --abandon ID`"
        )
    rec = status["last_reconciliation"]
    if rec:
        verdict = "reconciled" if rec["ok"] else f"NOT reconciled, {rec['docs_missing']} missing"
        print(
            f"last load (run {rec['run_id']}, batch {rec['batch_id']}): exported {rec['docs_exported']}, "
            f"processed {rec['docs_processed']}, loaded {rec['docs_loaded']}: {verdict}"
        )
    else:
        print("no load has run yet")
