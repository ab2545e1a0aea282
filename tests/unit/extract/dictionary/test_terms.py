"""Term files in three layouts; a bad file is an error naming the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbridge.extract.dictionary import DictionaryError, build_dictionary
from corpusbridge.extract.dictionary.terms import read_terms


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


def test_a_file_given_by_mistake_is_quoted_only_in_part(tmp_path: Path) -> None:
    """The error names the file and shows the start of its line, never a whole line of, say, secrets."""
    secrets_file = tmp_path / "service.tsv"
    secrets_file.write_text("DB_PASSWORD=hunter2-a-very-long-secret-value-that-must-not-be-logged\n")
    with pytest.raises(DictionaryError) as caught:
        list(read_terms(secrets_file))
    assert "service.tsv" in str(caught.value) and "must-not-be-logged" not in str(caught.value)
