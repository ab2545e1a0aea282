"""`corpusbridge extract`: the cluster payload's own command (extract/command.py), run on the workstation."""

from __future__ import annotations

from typing import Any

from corpusbridge.extract.command import HELP, add_arguments, run


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("extract", help=HELP)
    add_arguments(parser)
    parser.set_defaults(func=run)
