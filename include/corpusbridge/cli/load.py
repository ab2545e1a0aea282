"""`corpusbridge load --manifest M --results DIR`: verified payload results into the database, each shard once."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("load", help="load fetched concepts and vectors of an exported batch (exactly once)")
    parser.add_argument("--manifest", type=Path, required=True, help="the export's manifest.json")
    parser.add_argument("--results", type=Path, required=True, help="folder with concepts-I/vectors-I/result-I files")
    parser.add_argument("--run-label", help="recorded on every ledger row (default: cli__<UTC time>)")
    parser.add_argument(
        "--image-digest",
        help="sha256:<hex> of the image the payload ran in, for results that record none (a result that records "
        "one keeps it; a different one here fails the load)",
    )
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def cli_run_label() -> str:
    return "cli__" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_progress(progress: Any) -> None:
    log.info("%s", progress)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.db import connect
    from corpusbridge.load.ledger import Provenance
    from corpusbridge.load.stage import LOAD_FAILURES, run_load

    provenance = Provenance(args.run_label or cli_run_label(), args.image_digest)
    with connect(args.db) as conn:
        try:
            summary = run_load(conn, args.manifest, args.results, provenance=provenance, progress=log_progress)
        except LOAD_FAILURES as exc:
            emit(load_failure(exc), args.json)
            return 1
    emit(summary.as_dict(), args.json)
    return 0


def load_failure(exc: Exception) -> dict[str, Any]:
    """A failed load as the CLI prints it: the error, plus the bad shards or the reconciliation when known."""
    from corpusbridge.load.reconcile import ReconciliationError
    from corpusbridge.load.verify import ResultVerificationError

    failure: dict[str, Any] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    if isinstance(exc, ResultVerificationError):
        failure["bad_shards"] = [{"index": b.index, "file": b.file, "reason": b.reason} for b in exc.bad]
    if isinstance(exc, ReconciliationError):
        failure["reconciliation"] = exc.reconciliation.as_dict()
    return failure
