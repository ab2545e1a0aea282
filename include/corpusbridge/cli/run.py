"""`corpusbridge run --backend local|slurm`: ingest -> sanitize -> index -> export -> compute -> load -> reconcile."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from corpusbridge.cli.output import add_db_argument, add_json_argument, emit, positive_int

log = logging.getLogger(__name__)

HPC_CONN_ENV = "AIRFLOW_CONN_CORPUSBRIDGE_HPC"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="the whole round trip on new documents, without Airflow")
    parser.add_argument(
        "--backend", choices=("local", "slurm"), default="local", help="where the payload runs (default local)"
    )
    parser.add_argument("--source", type=Path, help="crawl folder to ingest first (default: ingest nothing)")
    parser.add_argument("--dictionary", type=Path, help="terms file (TSV/CSV/JSONL; default: the bundled sample)")
    parser.add_argument("--no-embeddings", action="store_true", help="concepts only, no vectors")
    parser.add_argument(
        "--reprocess", action="store_true", help="export every document again (their old results are replaced)"
    )
    parser.add_argument("--shard-rows", type=positive_int, default=50_000, help="documents per exported shard")
    parser.add_argument("--run-label", help="recorded on every ledger row (default: cli__<UTC time>)")
    parser.add_argument(
        "--hpc-conn",
        metavar="URI",
        help=f"cluster connection: Airflow connection JSON, or ssh://user@host:port?scratch_root=/path&key_file=... "
        f"(default: ${HPC_CONN_ENV})",
    )
    parser.add_argument(
        "--slurm-python",
        default="python3",
        help="python on the compute nodes with corpusbridge installed (default: python3 there); or use --container",
    )
    parser.add_argument(
        "--container",
        metavar="IMAGE",
        help="Apptainer/Singularity image on the cluster to run the payload in (slurm backend; runtime: the "
        "connection's container_runtime); its digest is recorded with every loaded row",
    )
    add_db_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corpusbridge.cli.load import cli_run_label, load_failure
    from corpusbridge.db import connect
    from corpusbridge.load.pipeline import PipelineError, PipelineOptions, run_pipeline
    from corpusbridge.load.stage import LOAD_FAILURES

    if args.container and args.backend != "slurm":
        raise SystemExit("corpusbridge run: --container runs the payload in an image on the cluster: use it with "
                         "--backend slurm")  # fmt: skip
    options = PipelineOptions(
        backend=args.backend,
        source=args.source,
        terms=args.dictionary,
        embeddings=not args.no_embeddings,
        reprocess=args.reprocess,
        shard_rows=args.shard_rows,
        run_label=args.run_label or cli_run_label(),
        cluster=_cluster(args) if args.backend == "slurm" else None,
        slurm_python=args.slurm_python,
        container=args.container,
    )
    with connect(args.db) as conn:
        try:
            summary = run_pipeline(conn, options)
        except (PipelineError, *LOAD_FAILURES) as exc:
            emit(load_failure(exc), args.json)
            return 1
    emit(summary.as_dict(), args.json)
    return 0


def _cluster(args: argparse.Namespace) -> Any:
    from corpusbridge.hpc.cluster import ClusterSettings, ClusterSettingsError

    text = args.hpc_conn or os.environ.get(HPC_CONN_ENV)
    if not text:
        sys.exit(
            f"corpusbridge run: --backend slurm needs the cluster connection: set {HPC_CONN_ENV} (the JSON that "
            "`make sandbox-up` / `scripts/hpc-sandbox.sh up` prints) or pass --hpc-conn"
        )
    try:
        return ClusterSettings.from_mapping(connection_mapping(text))
    except (ClusterSettingsError, ValueError) as exc:
        sys.exit(f"corpusbridge run: cluster connection: {exc}")


def connection_mapping(text: str) -> dict[str, Any]:
    """An Airflow connection as JSON (`{"conn_type": "ssh", "host": ...}`) or URI (`ssh://user@host:22?k=v`)."""
    text = text.strip()
    if text.startswith("{"):
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError("the connection JSON must be an object")
        return loaded
    parts = urlsplit(text)
    if not parts.hostname:
        raise ValueError(f"{text!r} is neither connection JSON nor an ssh://user@host:port?extra=value URI")
    query = dict(parse_qsl(parts.query))
    extra = json.loads(query.pop("__extra__")) if "__extra__" in query else query
    return {
        "conn_type": parts.scheme or "ssh",
        "host": unquote(parts.hostname),
        "port": parts.port,
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "extra": extra,
    }
