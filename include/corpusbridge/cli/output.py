"""How commands print: one JSON object with `--json`, aligned `key: value` lines otherwise."""

from __future__ import annotations

from typing import Any

# One printer for every command: the cluster payload prints its own summary and cannot import the CLI.
from corpusbridge.extract.command import print_summary as emit

__all__ = ["add_db_argument", "add_json_argument", "emit"]


def add_db_argument(parser: Any) -> None:
    parser.add_argument("--db", metavar="URI", help="PostgreSQL URI (default: $CORPUSBRIDGE_DB, else embedded)")


def add_json_argument(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
