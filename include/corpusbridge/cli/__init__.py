"""The `corpusbridge` command: every pipeline stage by hand, without Airflow.

Each subcommand lives in its own module exposing `add_parser(subparsers)`; the parser it adds sets
`func(args) -> int`. A module named here is imported only to build the parser, so keep heavy imports inside
the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = (
    "corpusbridge.cli.ingest",
    "corpusbridge.cli.quarantine",
    "corpusbridge.cli.sanitize",
    "corpusbridge.cli.index",
    "corpusbridge.cli.search",
    "corpusbridge.cli.dictionary",
    "corpusbridge.cli.extract",
    "corpusbridge.cli.export",
    "corpusbridge.cli.load",
    "corpusbridge.cli.status",
    "corpusbridge.cli.similar",
    "corpusbridge.cli.concepts",
    "corpusbridge.cli.related",
    "corpusbridge.cli.graph",
    "corpusbridge.cli.run",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corpusbridge", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
