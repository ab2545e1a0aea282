"""Every class of bad input is quarantined with a reason; the run succeeds and the counts reconcile."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from corpusbridge.ingest.stage import IngestOptions, run_ingest

pytestmark = [pytest.mark.integration, pytest.mark.faults]

GOOD = {"id": "g1", "title": "A good record", "abstract": "Fine."}
MEDLINE_OK = (
    "<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><ArticleTitle>T{pmid}</ArticleTitle>"
    "</Article></MedlineCitation></PubmedArticle>"
)


def _jsonl(*records: object) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in records) + b"\n"


def _ingest_one(db, tmp_path: Path, name: str, data: bytes, **options):  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / name).write_bytes(data)
    summary = run_ingest(db, corpus, IngestOptions(workers=1, **options))
    assert summary.reconciled, summary
    rows = db.execute("SELECT error_class, locator, message, raw FROM quarantine ORDER BY quarantine_id").fetchall()
    return summary, rows


@pytest.mark.parametrize(
    ("name", "data", "error_class"),
    [
        ("bad.jsonl", _jsonl(GOOD, b'{"id": "x", "title": '), "MalformedJson"),
        ("bad.jsonl", _jsonl(GOOD, b'{"id": "x", "title": "caf\xe9"}'), "InvalidUtf8"),
        ("bad.jsonl", _jsonl(GOOD, b'{"id": "x", "title": "a\\u0000b"}'), "NulByte"),
        ("bad.jsonl", _jsonl(GOOD, b'{"id": "x", "title": "a\x00b"}'), "NulByte"),
        ("bad.jsonl", _jsonl(GOOD, {"title": "no id at all"}), "MissingId"),
        ("bad.jsonl", _jsonl(GOOD, {"id": "x", "title": 42}), "WrongFieldType"),
        ("bad.jsonl", _jsonl(GOOD, {"id": "x", "authors": "not a list"}), "WrongFieldType"),
        ("bad.jsonl", _jsonl(GOOD, "a string, not a record"), "WrongFieldType"),
        ("bad.jsonl", _jsonl(GOOD, b'{"id": "x", "year": NaN}'), "MalformedJson"),
        ("bad.jsonl", _jsonl(GOOD, {"id": "x", "title": "\ud800"}), "InvalidUnicode"),
    ],
)
def test_bad_json_record_is_quarantined_and_the_good_one_loads(db, tmp_path, name, data, error_class) -> None:
    summary, rows = _ingest_one(db, tmp_path, name, data)
    assert (summary.records_seen, summary.records_loaded, summary.records_quarantined) == (2, 1, 1)
    assert rows[0][0] == error_class and rows[0][1] == "line 2"
    assert rows[0][3], "the raw bytes of the bad record are kept"


def test_a_jsonl_file_cut_inside_its_last_record_is_a_truncated_record(db, tmp_path) -> None:
    """What a file read while still being written looks like: the runbook's cue to ingest again later."""
    data = _jsonl(GOOD) + b'{"id": "x", "title": "half a rec'
    summary, rows = _ingest_one(db, tmp_path, "part.jsonl", data)
    assert (summary.records_loaded, summary.records_quarantined) == (1, 1)
    assert rows[0][0] == "TruncatedRecord" and "file ends inside this record" in rows[0][2]


def test_a_small_json_file_holding_an_array_of_works_loads_each(db, tmp_path) -> None:
    """As a large file's array is streamed item by item; before, the whole array was one record quarantined."""
    works = [{"id": "a1", "title": "First work"}, {"id": "a2", "title": "Second work"}, [1]]
    summary, rows = _ingest_one(db, tmp_path, "works.json", json.dumps(works).encode())
    assert (summary.records_seen, summary.records_loaded, summary.records_quarantined) == (3, 2, 1)
    assert [(r[0], r[1]) for r in rows] == [("WrongFieldType", "document item 2")]


def test_malformed_xml_record_costs_only_itself(db, tmp_path) -> None:
    broken = "<PubmedArticle><MedlineCitation><PMID>2</PMID><Article><ArticleTitle>oops</Article></PubmedArticle>"
    body = MEDLINE_OK.format(pmid=1) + broken + MEDLINE_OK.format(pmid=3)
    summary, rows = _ingest_one(db, tmp_path, "m.xml", f"<PubmedArticleSet>{body}</PubmedArticleSet>".encode())
    assert (summary.records_loaded, summary.records_quarantined) == (2, 1)
    assert rows[0][0] == "MalformedXml" and "oops" in bytes(rows[0][3]).decode()
    ids = {r[0] for r in db.execute("SELECT doc_id FROM raw_documents")}
    assert ids == {"pmid:1", "pmid:3"}


def test_truncated_gzip_keeps_what_was_readable_and_quarantines_the_rest(db, tmp_path) -> None:
    lines = _jsonl(*({"id": f"r{i}", "title": f"Record number {i} " * 20} for i in range(2000)))
    whole = gzip.compress(lines)
    summary, rows = _ingest_one(db, tmp_path, "cut.jsonl.gz", whole[: len(whole) // 2])
    assert summary.records_quarantined == 1 and rows[0][0] == "TruncatedGzip"
    assert 0 < summary.records_loaded < 2000


def test_empty_file_and_unknown_format_are_quarantined_whole(db, tmp_path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.jsonl").write_bytes(b"")
    (corpus / "notes.txt").write_bytes(b"just some text, not a scholarly record\n")
    (corpus / "page.html").write_bytes(b"<html><body>hi</body></html>")
    summary = run_ingest(db, corpus, IngestOptions(workers=1))
    assert summary.reconciled and summary.records_quarantined == 3 and summary.records_loaded == 0
    assert summary.quarantine_by_class == {"UnknownFormat": 2, "EmptyFile": 1}
    statuses = {r[0] for r in db.execute("SELECT status FROM source_files")}
    assert statuses == {"quarantined"}


def test_single_huge_record_is_quarantined_with_its_head_only(db, tmp_path) -> None:
    huge = json.dumps({"id": "huge", "title": "x" * 200_000}).encode()
    summary, rows = _ingest_one(db, tmp_path, "big.jsonl", _jsonl(GOOD, huge, {"id": "after"}), record_cap=50_000)
    assert (summary.records_loaded, summary.records_quarantined) == (2, 1)
    assert rows[0][0] == "RecordTooLarge" and len(rows[0][3]) <= 64 * 1024


def test_huge_xml_element_is_quarantined_and_the_next_one_loads(db, tmp_path) -> None:
    big = MEDLINE_OK.format(pmid=1).replace("T1", "T" * 300_000)
    body = big + MEDLINE_OK.format(pmid=2)
    summary, rows = _ingest_one(
        db, tmp_path, "m.xml", f"<PubmedArticleSet>{body}</PubmedArticleSet>".encode(), record_cap=100_000
    )
    assert (summary.records_loaded, summary.records_quarantined) == (1, 1)
    assert rows[0][0] == "RecordTooLarge"


def test_duplicate_ids_in_one_file_are_one_document(db, tmp_path) -> None:
    data = _jsonl({"id": "d", "title": "first"}, {"id": "d", "title": "second"}, {"id": "e"})
    summary, _ = _ingest_one(db, tmp_path, "dups.jsonl", data)
    assert (summary.records_seen, summary.records_loaded, summary.records_duplicate) == (3, 2, 1)
    # The later record in the file wins, and both positions are kept as provenance.
    assert db.execute("SELECT title FROM raw_documents WHERE doc_id = 'id:d'").fetchone() == ("second",)
    assert db.execute("SELECT count(*) FROM document_sources WHERE doc_id = 'id:d'").fetchone() == (2,)


def test_truncated_xml_file_quarantines_the_open_element(db, tmp_path) -> None:
    body = MEDLINE_OK.format(pmid=1) + MEDLINE_OK.format(pmid=2)[:60]
    summary, rows = _ingest_one(db, tmp_path, "m.xml", f"<PubmedArticleSet>{body}".encode())
    assert (summary.records_loaded, summary.records_quarantined) == (1, 1)
    assert rows[0][0] == "TruncatedRecord"


def test_a_file_that_crashes_the_parser_is_quarantined_whole_and_its_chunk_mates_load(db, tmp_path, monkeypatch):
    from corpusbridge.ingest.formats import plain

    real = plain.to_record

    def explode_on_poison(obj, locator):  # a parser bug that only this file's content triggers
        if obj.get("id") == "poison":
            raise KeyError("simulated parser bug")
        return real(obj, locator)

    monkeypatch.setattr(plain, "to_record", explode_on_poison)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_bytes(_jsonl({"id": "a1"}, {"id": "a2"}))
    (corpus / "b.jsonl").write_bytes(_jsonl({"id": "b1"}, {"id": "poison"}))
    (corpus / "c.jsonl").write_bytes(_jsonl({"id": "c1"}))
    summary = run_ingest(db, corpus, IngestOptions(workers=1))
    assert summary.reconciled and (summary.records_loaded, summary.records_quarantined) == (3, 1)
    assert summary.quarantine_by_class == {"ParserFailure:KeyError": 1}
    assert db.execute("SELECT status FROM source_files WHERE path LIKE '%b.jsonl'").fetchone() == ("quarantined",)
