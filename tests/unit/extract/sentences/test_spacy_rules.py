"""The exported spaCy rules must be current, and the payload's import path must not import spaCy."""

from __future__ import annotations

import subprocess
import sys

from corpusbridge.extract.sentences.spacy_rules import TokenizerRules, export_rules, installed_spacy, stored_rules


def test_stored_rules_match_the_installed_spacy() -> None:
    assert stored_rules() == export_rules(), (
        "run `python -m corpusbridge.extract.sentences.spacy_rules` after a spaCy upgrade"
    )


def test_rules_survive_a_json_round_trip() -> None:
    rules = stored_rules()
    assert TokenizerRules.from_json(rules.to_json()) == rules


def test_the_payload_finds_sentences_without_importing_spacy() -> None:
    code = (
        "import sys\n"
        "from corpusbridge.extract.command import main\n"
        "from corpusbridge.extract import program, workers\n"
        "from corpusbridge.extract.sentences.splitter import SentenceSplitter\n"
        "assert SentenceSplitter().starts('One (e.g. this). Two.') == [17]\n"
        "assert 'spacy' not in sys.modules, sorted(m for m in sys.modules if m.startswith('spacy'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_installed_spacy_version_is_read_without_importing_spacy() -> None:
    from importlib import metadata

    assert installed_spacy() == metadata.version("spacy")
