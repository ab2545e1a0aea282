"""The dictionary cache: built once per version, reused afterwards, published atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusbridge.compute import dictionary as cache_module
from corpusbridge.compute.dictionary import cached_dictionary
from corpusbridge.extract.dictionary import DictionaryError, read_version


def _terms(path: Path, body: str = "C1\tlung cancer\nC2\tasthma\n") -> Path:
    path.write_text("concept_id\tterm\n" + body, encoding="utf-8")
    return path


def test_built_once_then_reused_without_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terms = _terms(tmp_path / "terms.tsv")
    first = cached_dictionary(terms, tmp_path / "cache")
    assert first.built and first.path == tmp_path / "cache" / first.version
    assert read_version(first.path) == first.version
    inode = (first.path / "meta.json").stat().st_ino

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt a cached dictionary")

    monkeypatch.setattr(cache_module, "build_dictionary", no_build)
    again = cached_dictionary(terms, tmp_path / "cache")
    assert (again.path, again.version, again.built) == (first.path, first.version, False)
    assert (again.path / "meta.json").stat().st_ino == inode
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".build")] == []


def test_same_terms_in_another_layout_keep_the_published_artifact(tmp_path: Path) -> None:
    first = cached_dictionary(_terms(tmp_path / "a.tsv"), tmp_path / "cache")
    other = _terms(tmp_path / "b.tsv", "C2\tasthma\nC1\tlung cancer\n")  # same dictionary, other order
    inode = (first.path / "meta.json").stat().st_ino
    again = cached_dictionary(other, tmp_path / "cache")
    assert (again.version, again.built) == (first.version, False)
    assert (first.path / "meta.json").stat().st_ino == inode


def test_a_changed_dictionary_gets_a_new_version(tmp_path: Path) -> None:
    terms = _terms(tmp_path / "terms.tsv")
    first = cached_dictionary(terms, tmp_path / "cache")
    _terms(terms, "C1\tlung cancer\nC3\tfever\n")
    second = cached_dictionary(terms, tmp_path / "cache")
    assert second.version != first.version and second.built and first.path.is_dir()


def test_a_damaged_cached_artifact_is_rebuilt(tmp_path: Path) -> None:
    terms = _terms(tmp_path / "terms.tsv")
    first = cached_dictionary(terms, tmp_path / "cache")
    (first.path / "meta.json").unlink()
    again = cached_dictionary(terms, tmp_path / "cache")
    assert again.built and read_version(again.path) == first.version


def test_missing_terms_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match=r"nope\.tsv"):
        cached_dictionary(tmp_path / "nope.tsv", tmp_path / "cache")
