"""Term files in, a versioned artifact out; the version is the content of the normalized dictionary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbridge.extract.concepts.matcher import Matcher
from corpusbridge.extract.dictionary import build_dictionary, load_dictionary, read_version


def test_build_report_counts_reconcile_and_load_never_rebuilds(tmp_path: Path) -> None:
    source = tmp_path / "terms.tsv"
    source.write_text("concept_id\tterm\nC1\tlung\nC2\t---\nC3\tlung\n", encoding="utf-8")
    report = build_dictionary(source, tmp_path / "art")
    assert (report.terms_read, report.terms_empty, report.keys, report.ambiguous_keys) == (3, 1, 1, 1)
    assert report.empty_lines == [3]
    assert report.artifact_bytes == sum(p.stat().st_size for p in (tmp_path / "art").iterdir())
    loaded = load_dictionary(tmp_path / "art")
    assert loaded.version == report.version == read_version(tmp_path / "art")
    assert [m.concept_id for m in Matcher(loaded).find("Lung")] == ["C1", "C3"]


def test_changing_a_term_changes_the_version(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("concept_id\tterm\nC1\tlung\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("concept_id\tterm\nC1\tlungs\n", encoding="utf-8")
    assert (
        build_dictionary(tmp_path / "a.tsv", tmp_path / "a").version
        != build_dictionary(tmp_path / "b.tsv", tmp_path / "b").version
    )


def test_a_big_dictionary_is_split_by_first_letter_and_matches_exactly_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Split automata hold disjoint keys under global entry numbers: the matcher must not see the seams."""
    terms = ["lung", "lung cancer", "small cell lung cancer", "cell", "cell line", "cancer", "b-cell", "zeta", "alpha"]
    terms += [f"{a}{b} term" for a in "abcdefghijklmnopqrstuvwxyz" for b in "aeiou"]
    source = tmp_path / "terms.tsv"
    source.write_text("concept_id\tterm\n" + "".join(f"C{i}\t{t}\n" for i, t in enumerate(terms)), encoding="utf-8")
    whole = build_dictionary(source, tmp_path / "whole")
    monkeypatch.setattr("corpusbridge.extract.dictionary.build.PART_PICKLE_BYTES", 4096)
    split = build_dictionary(source, tmp_path / "split")
    assert split.version == whole.version and split.keys == whole.keys
    parts = json.loads((tmp_path / "split" / "meta.json").read_text(encoding="utf-8"))["automata"]
    assert parts > 2 and len(load_dictionary(tmp_path / "split").automata) == parts
    assert sorted(p.name for p in (tmp_path / "split").glob("automaton-*.pickle")) == [
        f"automaton-{n}.pickle" for n in range(parts)
    ]
    text = "Small cell lung cancer, cell lines and B-cell zeta; lung cancers. Alpha ka term, zu term. Cell."
    one, many = Matcher(load_dictionary(tmp_path / "whole")), Matcher(load_dictionary(tmp_path / "split"))
    assert many.find(text) == one.find(text) and len(one.find(text)) >= 8
