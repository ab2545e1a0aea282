"""Issue 13 item 5: one hostile record costs only itself (per-record quarantine, nesting cap), never its file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbridge.ingest.parse import FileParse, parse_file
from corpusbridge.ingest.records import Quarantined, Record

pytestmark = pytest.mark.faults

GOOD_1 = json.dumps({"id": "g1", "title": "First good record"}).encode()
GOOD_2 = json.dumps({"id": "g2", "title": "Second good record"}).encode()
MEDLINE = (
    "<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><ArticleTitle>{title}</ArticleTitle>"
    "</Article></MedlineCitation></PubmedArticle>"
)


def _parse(path: Path) -> list[Record | Quarantined]:
    return list(parse_file(path, FileParse()))


def _between_good_lines(tmp_path: Path, hostile: bytes) -> list[Record | Quarantined]:
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(GOOD_1 + b"\n" + hostile + b"\n" + GOOD_2 + b"\n")
    return _parse(path)


@pytest.mark.parametrize(
    ("hostile", "error_class"),
    [
        (b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "NestingTooDeep"),
        (b'{"id": "deep", "x": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}", "NestingTooDeep"),
        (b'{"id": "big", "n": ' + b"7" * 5000 + b"}", "NumberTooLong"),
    ],
    ids=["array-100k-deep", "object-100k-deep", "int-5000-digits"],
)
def test_hostile_json_line_is_one_quarantine_entry(tmp_path: Path, hostile: bytes, error_class: str) -> None:
    items = _between_good_lines(tmp_path, hostile)
    assert [type(i).__name__ for i in items] == ["Record", "Quarantined", "Record"]
    bad = items[1]
    assert isinstance(bad, Quarantined) and bad.error_class == error_class and bad.locator == "line 2"
    assert bad.raw, "the raw bytes of the record are kept"


def test_hostile_whole_json_document_is_quarantined_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (item,) = _parse(path)
    assert isinstance(item, Quarantined) and item.error_class == "NestingTooDeep"


def test_moderate_nesting_and_long_but_sane_numbers_still_load(tmp_path: Path) -> None:
    ok = json.dumps({"id": "n", "title": "T", "x": json.loads("[" * 50 + "]" * 50), "n": int("9" * 30)}).encode()
    items = _between_good_lines(tmp_path, ok)
    assert all(isinstance(i, Record) for i in items), items


def test_xml_record_nested_5000_deep_costs_only_itself(tmp_path: Path) -> None:
    deep = "<i>" * 5000 + "x" + "</i>" * 5000
    body = MEDLINE.format(pmid=1, title="ok") + MEDLINE.format(pmid=2, title=deep) + MEDLINE.format(pmid=3, title="ok")
    path = tmp_path / "deep.xml"
    path.write_text(f"<PubmedArticleSet>{body}</PubmedArticleSet>")
    items = _parse(path)
    assert [type(i).__name__ for i in items] == ["Record", "Quarantined", "Record"]
    assert isinstance(items[1], Quarantined) and items[1].error_class == "NestingTooDeep"


def test_utf8_bom_does_not_cost_the_first_jsonl_record(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_1 + b"\n" + GOOD_2 + b"\n")
    items = _parse(path)
    assert [i.doc_id for i in items if isinstance(i, Record)] == ["id:g1", "id:g2"], items


def test_utf8_bom_does_not_cost_a_json_document(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_1)
    items = _parse(path)
    assert [i.doc_id for i in items if isinstance(i, Record)] == ["id:g1"], items
