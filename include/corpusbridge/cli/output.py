"""How commands print: one JSON object with `--json`, aligned `key: value` lines otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

# One printer for every command: the cluster payload prints its own summary and cannot import the CLI.
from corpusbridge.extract.command import print_summary as emit

__all__ = ["add_db_argument", "add_json_argument", "emit", "look_up_document"]

T = TypeVar("T")


def add_db_argument(parser: Any) -> None:
    parser.add_argument("--db", metavar="URI", help="PostgreSQL URI (default: $CORPUSBRIDGE_DB, else embedded)")


def add_json_argument(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def look_up_document(command: str, db: str | None, query: Callable[..., T], doc_id: str, *args: Any) -> T:
    """`query(conn, doc_id, *args)` on the database; a document that is not loaded ends the command, saying so."""
    from corpusbridge.db import connect
    from corpusbridge.load.lookup import UnknownDocument

    with connect(db) as conn:
        try:
            return query(conn, doc_id, *args)
        except UnknownDocument as exc:
            raise SystemExit(f"corpusbridge {command}: {exc}") from exc
