"""`corpusbridge dictionary build TERMS --out ARTIFACT`: build the concept automaton once, on the workstation."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from corpusbridge.cli.output import add_json_argument, emit


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("dictionary", help="concept dictionaries (Aho-Corasick artifacts)")
    actions = parser.add_subparsers(dest="dictionary_command", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="normalize a term file and save the automaton as a versioned artifact")
    build.add_argument("terms", type=Path, help="TSV 'concept_id<TAB>term' (header), CSV, or JSONL with synonyms")
    build.add_argument("--out", type=Path, required=True, help="artifact folder to write (replaced atomically)")
    build.add_argument("--hyphen-variants", action="store_true", help="also match hyphenated terms written joined")
    build.add_argument("--plural-variants", action="store_true", help="also match simple English plurals")
    add_json_argument(build)
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from corpusbridge.extract.dictionary import BuildOptions, DictionaryError, build_dictionary, load_dictionary

    options = BuildOptions(hyphen_variants=args.hyphen_variants, plural_variants=args.plural_variants)
    try:
        report = build_dictionary(args.terms, args.out, options)
        loaded = load_dictionary(args.out)
    except (DictionaryError, OSError) as exc:
        raise SystemExit(f"corpusbridge dictionary: {exc}") from exc
    emit({**asdict(report), "load_seconds": loaded.load_seconds}, args.json)
    return 0
