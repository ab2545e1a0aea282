"""How commands print: one JSON object with `--json`, aligned `key: value` lines otherwise."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def emit(summary: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str, sort_keys=False))
        return
    width = max((len(k) for k in summary), default=0)
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")


def add_db_argument(parser: Any) -> None:
    parser.add_argument("--db", metavar="URI", help="PostgreSQL URI (default: $CORPUSBRIDGE_DB, else embedded)")


def add_json_argument(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
