"""The artifact on disk: replaced atomically, read back exactly, and refused (with the fix) when it is foreign."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbridge.extract.concepts.matcher import Matcher
from corpusbridge.extract.dictionary import DictionaryError, build_dictionary, load_dictionary


def test_loading_something_that_is_not_an_artifact_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match="corpusbridge dictionary build"):
        load_dictionary(tmp_path)


def test_rebuild_replaces_the_artifact_atomically(tmp_path: Path) -> None:
    source = tmp_path / "terms.tsv"
    source.write_text("concept_id\tterm\nC1\tlung\n", encoding="utf-8")
    build_dictionary(source, tmp_path / "art")
    source.write_text("concept_id\tterm\nC1\tcell\n", encoding="utf-8")
    build_dictionary(source, tmp_path / "art")
    assert [m.matched for m in Matcher(load_dictionary(tmp_path / "art")).find("lung cell")] == ["cell"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "terms.tsv"]


def test_concept_groups_are_read_back_exactly_from_the_string_table(tmp_path: Path) -> None:
    source = tmp_path / "terms.tsv"
    rows = "C1\tlung\nC2\tlung\nÄ-7\tcell\nC3\tcell line\nC9\tzürich\n"
    source.write_text("concept_id\tterm\n" + rows, encoding="utf-8")
    build_dictionary(source, tmp_path / "art")
    groups = load_dictionary(tmp_path / "art").groups
    assert sorted(groups[i] for i in range(len(groups))) == [("C1", "C2"), ("C3",), ("C9",), ("Ä-7",)]
    with pytest.raises(IndexError, match="out of range"):
        groups[len(groups)]


def test_an_artifact_of_another_format_asks_for_a_rebuild(tmp_path: Path) -> None:
    source = tmp_path / "terms.tsv"
    source.write_text("concept_id\tterm\nC1\tlung\n", encoding="utf-8")
    build_dictionary(source, tmp_path / "art")
    meta = json.loads((tmp_path / "art" / "meta.json").read_text(encoding="utf-8"))
    (tmp_path / "art" / "meta.json").write_text(json.dumps({**meta, "format": 2}), encoding="utf-8")
    with pytest.raises(DictionaryError, match="rebuild the dictionary"):
        load_dictionary(tmp_path / "art")
