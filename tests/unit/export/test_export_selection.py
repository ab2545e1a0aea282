"""Selection: validation, its JSON form, the doc-id file, and the SQL it composes (values always bound)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from corpusbridge.export import statements
from corpusbridge.export.selection import Selection, SelectionError, read_doc_ids
from corpusbridge.export.shards import ShardRowLimits

HOSTILE = "x'); DROP TABLE clean_documents; --"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "everything"}, "mode 'everything'"),
        ({"limit": 0}, "limit must be >= 1"),
        ({"year_from": 2020, "year_to": 2010}, "year_from 2020 is after year_to 2010"),
        ({"cleaned_from": datetime(2026, 2, 1, tzinfo=UTC), "cleaned_to": datetime(2026, 1, 1, tzinfo=UTC)}, "before"),
    ],
)
def test_invalid_selections_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        Selection(**kwargs)


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(SelectionError, match=r"unknown selection keys \['yaer_from'\]"):
        Selection.from_dict({"yaer_from": 2001})


def test_as_dict_is_canonical() -> None:
    a = Selection(doc_ids=("b", "a", "b"), query="  ")
    assert a.as_dict()["doc_ids"] == ["a", "b"] and a.query is None
    assert Selection.from_dict(a.as_dict()) == Selection(doc_ids=("a", "b"))


def test_read_doc_ids(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("# comment\n d2 \n\nd1\nd2\n", encoding="utf-8")
    assert read_doc_ids(path) == ("d1", "d2")
    path.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(SelectionError, match="no doc ids"):
        read_doc_ids(path)


def test_every_value_is_a_bound_parameter() -> None:
    selection = Selection(
        year_from=1, year_to=2, source=HOSTILE, limit=3, query=HOSTILE, doc_ids=(HOSTILE,),
        cleaned_from=datetime(2026, 1, 1, tzinfo=UTC), cleaned_to=datetime(2026, 1, 2, tzinfo=UTC),
        dictionary_version=HOSTILE, model_hash=HOSTILE,
    )  # fmt: skip
    text = statements.selection_query(selection).as_string(None)
    assert "DROP TABLE" not in text
    params = statements.selection_params(selection)
    for name in ("year_from", "year_to", "source", "limit", "query", "doc_ids", "cleaned_from", "cleaned_to",
                 "dictionary_version", "model_hash", "selection"):  # fmt: skip
        assert f"%({name})s" in text, name
        assert name in params


def test_all_mode_has_no_pending_conditions() -> None:
    text = statements.selection_query(Selection(mode="all")).as_string(None)
    assert "document_results" not in text and "export_batches" not in text and "is_canonical" in text


def test_shard_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        ShardRowLimits(0, 10)


def test_an_empty_selection_says_which_case_it_is_and_what_to_change() -> None:
    assert "is new or changed since its last load" in Selection().why_empty()
    assert Selection(mode="all").why_empty().startswith("there is no clean document yet")
    filtered = Selection(mode="all", source="pubmed", year_from=2020).why_empty()
    assert filtered.startswith("no clean document matches year >= 2020 and source 'pubmed'")
    assert "one of crossref, jats, jsonl, medline, openalex" in filtered  # pubmed records are the medline format
    assert "not loaded yet" in Selection(source="medline").why_empty()
    assert "one of" not in Selection(source="medline").why_empty()


def test_a_selection_describes_itself_in_one_short_line() -> None:
    line = Selection(mode="pending", query="asthma", dictionary_version="a" * 64, model_hash="b" * 64).describe()
    assert line == f"pending, query 'asthma', dictionary {'a' * 12}, model {'b' * 12}"
