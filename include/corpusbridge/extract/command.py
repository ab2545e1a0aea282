"""The payload's command line: `python -m corpusbridge.extract` and `corpusbridge extract` parse and print through here.

The payload owns its options, exit codes and summary keys; the workstation's `corpusbridge` command adds them to its
own parser (cli/extract.py), never the reverse, so the compute container needs nothing from `corpusbridge.cli`.
Exit codes: 0 done or skipped, 2 an input or option error (one `{"error": ...}` object with `--json`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

HELP = "concepts and vectors for one exported shard (cluster payload)"
DESCRIPTION = "`corpusbridge extract` / `python -m corpusbridge.extract`: run the payload on one shard."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of the payload (also those of `corpusbridge extract`)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="export manifest JSON (with --index)")
    source.add_argument("--input", type=Path, help="one shard Parquet file, for ad-hoc runs (no sha256 to verify)")
    parser.add_argument("--index", type=int, help="shard index (required with --manifest; default 0 with --input)")
    parser.add_argument("--dictionary", type=Path, required=True, help="artifact from `corpusbridge dictionary build`")
    parser.add_argument("--out", type=Path, required=True, help="folder for concepts-I/vectors-I/result-I files")
    parser.add_argument("--no-embeddings", action="store_true", help="concepts only, skip the vectors")
    parser.add_argument(
        "--embedding-runtime",
        choices=("numpy", "torch"),
        default="numpy",
        help="numpy (default; CPU nodes, no torch) or torch (GPU nodes; needs torch installed)",
    )
    parser.add_argument(
        "--embedding-dtype",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="torch only: what the encoder computes in (default float32, the reference vectors)",
    )
    parser.add_argument(
        "--embedding-batch-size", type=_positive, default=64, help="texts per encoder batch (default 64)"
    )
    parser.add_argument("--workers", type=int, help="processes (default: $SLURM_CPUS_PER_TASK, else all cores)")
    parser.add_argument(
        "--sentences",
        choices=("fast", "spacy"),
        default="fast",
        help="sentence splitter: spaCy's rules on demand (fast, default) or the full spaCy pipeline",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def print_summary(summary: Mapping[str, Any], as_json: bool) -> None:
    """One JSON object with `--json`, aligned `key: value` lines otherwise (the same shape as every `corpusbridge`
    command prints)."""
    if as_json:
        print(json.dumps(summary, default=str, sort_keys=False))
        return
    width = max((len(k) for k in summary), default=0)
    for key, value in summary.items():
        print(f"{key:<{width}}  {_readable(value)}")


def _readable(value: Any) -> str:
    """A value as a person reads it, not as Python spells it: `-` for none, yes/no, lists joined, mappings as
    `key value` pairs (nested the same way, in parentheses)."""
    if value is None or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_readable(v) if isinstance(v, Mapping) else str(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {_nested(v)}" for k, v in value.items()) or "-"
    return str(value)


def _nested(value: Any) -> str:
    return f"({_readable(value)})" if isinstance(value, Mapping) and value else _readable(value)


def run(args: argparse.Namespace) -> int:
    """Process the shard the options name; print the summary (or the error) and return the exit code."""
    from corpusbridge.export.manifest import ManifestError
    from corpusbridge.extract.dictionary.artifact import DictionaryError
    from corpusbridge.extract.program import ExtractError, ShardInput, run_extract, shard_from_manifest

    if args.manifest is not None and args.index is None:
        print_summary({"error": "--manifest needs --index (the shard to process)"}, args.json)
        return 2
    if args.embedding_runtime == "numpy" and args.embedding_dtype != "float32":
        print_summary(
            {"error": "--embedding-dtype needs --embedding-runtime torch (numpy computes in float32)"},
            args.json,
        )
        return 2
    embedding = None
    expected: tuple[type[Exception], ...] = (ExtractError, ManifestError, DictionaryError, OSError)
    if not args.no_embeddings:
        # Imported only here: the concepts-only path never loads the embedding module (nor numpy, see __main__).
        from corpusbridge.extract.embeddings.embedder import EmbeddingError, EmbeddingOptions

        embedding = EmbeddingOptions(args.embedding_runtime, args.embedding_dtype, args.embedding_batch_size)
        expected += (EmbeddingError,)
    try:
        if args.manifest is not None:
            shard = shard_from_manifest(args.manifest, args.index)
        else:
            shard = ShardInput(args.input, args.index or 0)
        summary = run_extract(
            shard,
            args.dictionary,
            args.out,
            embeddings=not args.no_embeddings,
            embedding=embedding,
            workers=args.workers,
            sentence_mode=args.sentences,
        )
    except expected as exc:
        print_summary({"error": str(exc)}, args.json)
        return 2
    print_summary(asdict(summary), args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m corpusbridge.extract` (the same options as `corpusbridge extract`)."""
    parser = argparse.ArgumentParser(prog="python -m corpusbridge.extract", description=DESCRIPTION)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run(parser.parse_args(argv))
