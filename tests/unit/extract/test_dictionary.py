"""Term files in, a versioned artifact out; the version is the content of the normalized dictionary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbridge.extract.dictionary import (
    DictionaryError,
    build_dictionary,
    load_dictionary,
    read_terms,
    read_version,
)
from corpusbridge.extract.matcher import Matcher


def test_tsv_csv_and_jsonl_with_the_same_terms_get_the_same_version(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("concept_id\tterm\nC1\tLung Cancer\nC1\tNSCLC\nC2\tcell\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text('concept_id,term\nC2,cell\nC1,"lung  cancer"\nC1,nsclc\n', encoding="utf-8")
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"concept_id": "C1", "term": "lung cancer", "synonyms": ["NSCLC"]})
        + "\n"
        + json.dumps({"concept_id": "C2", "terms": ["Cell"]})
        + "\n",
        encoding="utf-8",
    )
    versions = {build_dictionary(tmp_path / f"t.{ext}", tmp_path / ext).version for ext in ("tsv", "csv", "jsonl")}
    assert len(versions) == 1


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


def test_missing_header_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "terms.tsv"
    source.write_text("C1\tlung\n", encoding="utf-8")
    with pytest.raises(DictionaryError, match=r"terms\.tsv: first line must be the header"):
        list(read_terms(source))


def test_malformed_row_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "terms.tsv"
    source.write_text("concept_id\tterm\nC1\tlung\nC2 lung cancer\n", encoding="utf-8")
    with pytest.raises(DictionaryError, match=r"terms.tsv:3: expected 2 fields"):
        build_dictionary(source, tmp_path / "art")


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


def test_a_big_dictionary_is_split_by_first_letter_and_matches_exactly_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Split automata hold disjoint keys under global entry numbers: the matcher must not see the seams."""
    terms = ["lung", "lung cancer", "small cell lung cancer", "cell", "cell line", "cancer", "b-cell", "zeta", "alpha"]
    terms += [f"{a}{b} term" for a in "abcdefghijklmnopqrstuvwxyz" for b in "aeiou"]
    source = tmp_path / "terms.tsv"
    source.write_text("concept_id\tterm\n" + "".join(f"C{i}\t{t}\n" for i, t in enumerate(terms)), encoding="utf-8")
    whole = build_dictionary(source, tmp_path / "whole")
    monkeypatch.setattr("corpusbridge.extract.dictionary.PART_PICKLE_BYTES", 4096)
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
