"""The payload's own command line: `python -m corpusbridge.extract` and `corpusbridge extract` are one parser."""

from __future__ import annotations

import argparse
import json

import pytest

from corpusbridge.cli import build_parser
from corpusbridge.extract.command import add_arguments, print_summary


def _options(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    return {
        action.dest: (tuple(action.option_strings), action.default, action.choices, action.required)
        for action in parser._actions
        if action.option_strings and action.dest != "help"
    }


def test_the_workstation_command_has_exactly_the_payload_options() -> None:
    payload = argparse.ArgumentParser()
    add_arguments(payload)
    workstation = build_parser()
    commands = next(a for a in workstation._actions if isinstance(a, argparse._SubParsersAction))
    assert _options(commands.choices["extract"]) == _options(payload)
    assert {"--manifest", "--input", "--index", "--dictionary", "--out", "--no-embeddings", "--json"} <= {
        option for options, *_ in _options(payload).values() for option in options
    }


def test_summary_prints_one_json_object_or_aligned_lines(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary({"status": "done", "docs": 3}, as_json=True)
    assert json.loads(capsys.readouterr().out) == {"status": "done", "docs": 3}
    print_summary({"status": "done", "docs": 3}, as_json=False)
    assert capsys.readouterr().out.splitlines() == ["status  done", "docs    3"]
    summary = {"batch_id": None, "ok": True, "job_ids": [], "shards": [1, 2], "counts": {"a": 1, "b": {"c": False}}}
    print_summary(summary, as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        "batch_id  -", "ok        yes", "job_ids   -", "shards    1, 2", "counts    a 1; b (c no)"]  # fmt: skip
