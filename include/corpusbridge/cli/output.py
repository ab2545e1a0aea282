"""How commands print: one JSON object with `--json`, aligned `key: value` lines otherwise."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

# One printer for every command: the cluster payload prints its own summary and cannot import the CLI.
from corpusbridge.extract.command import print_summary as emit

__all__ = ["add_db_argument", "add_json_argument", "document_id_of", "emit", "look_up_document", "positive_int"]

T = TypeVar("T")


def add_db_argument(parser: Any) -> None:
    parser.add_argument(
        "--db",
        metavar="URI",
        help="PostgreSQL URI (default: $CORPUSBRIDGE_DB, else the embedded server in $CORPUSBRIDGE_HOME/pgdata, "
        "$CORPUSBRIDGE_HOME defaulting to ./.corpusbridge)",
    )


def existing_database(db: str | None) -> str | None:
    """`db`, for a command that only reads: with the embedded default its server must exist already. Run from
    another folder, such a command would create an empty database and answer "nothing" as if it were the real one."""
    from corpusbridge.config import DB_ENV, HOME_ENV, database_uri, home_path

    pgdata = home_path() / "pgdata"
    if database_uri(db) is None and not (pgdata / "PG_VERSION").exists():
        raise SystemExit(
            f"corpusbridge: no database in {pgdata}: set ${HOME_ENV} to the folder that holds one (the one where "
            f"you ran `corpusbridge run` or `make demo`), or give --db URI (or ${DB_ENV})"
        )
    return db


def add_json_argument(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def positive_int(text: str) -> int:
    """An argparse type for counts and limits: a 0 or a negative number is a usage error, not a query's."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def document_id_of(text: str) -> str:
    """A document id as ingestion writes it: a DOI in any spelling (`10.1056/NEJMoa1`, `https://doi.org/...`,
    `DOI:...`) becomes `doi:<lower-case doi>`; any other id is kept as given."""
    from corpusbridge.ingest.records import normalize_doi

    doi = normalize_doi(text)
    return f"doi:{doi}" if doi else text.strip()


def look_up_document(command: str, db: str | None, query: Callable[..., T], doc_id: str, *args: Any) -> T:
    """`query(conn, doc_id, *args)` on the database; a document that is not loaded ends the command, saying so."""
    from corpusbridge.db import connect
    from corpusbridge.load.lookup import UnknownDocument

    with connect(existing_database(db)) as conn:
        try:
            return query(conn, document_id_of(doc_id), *args)
        except UnknownDocument as exc:
            raise SystemExit(f"corpusbridge {command}: {exc}") from exc
