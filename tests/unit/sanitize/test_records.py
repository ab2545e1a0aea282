"""Raw row -> clean record or reject: authors, years, ORCIDs, the duplicate hash, and the reasons."""

from __future__ import annotations

from dataclasses import replace

from corpusbridge.sanitize.records import (
    CleanRecord,
    RawDocument,
    Reject,
    RejectReason,
    normalize_authors,
    normalize_orcid,
    sanitize_record,
    text_hash,
    valid_year,
)

BASE = RawDocument(
    doc_id="10.1/x",
    source_format="crossref",
    title="A <i>title</i>",
    abstract="<jats:p>Some words here.</jats:p>",
    full_text=None,
    authors=[],
    year=2020,
    venue="J. Test",
    language=None,
    raw={},
    change_seq=7,
)
LONG = "Asthma control in adults treated with budesonide and formoterol as needed over fifty two weeks of follow up."


def test_clean_record_carries_cleaned_fields() -> None:
    record = sanitize_record(BASE)
    assert isinstance(record, CleanRecord)
    assert (record.title, record.abstract, record.year, record.source_seq) == ("A title", "Some words here.", 2020, 7)
    assert record.clean_hash and record.text_hash is None, "too little text to link duplicates on"


def test_empty_after_cleaning_is_rejected_with_reason() -> None:
    reject = sanitize_record(replace(BASE, title="<b> </b>", abstract="&#x200b;", full_text="<p></p>"))
    assert isinstance(reject, Reject)
    assert reject.reason is RejectReason.NO_TEXT and "10.1/x" in reject.detail


def test_malformed_record_is_rejected_not_raised() -> None:
    reject = sanitize_record(replace(BASE, authors={"name": "not a list"}))
    assert isinstance(reject, Reject) and reject.reason is RejectReason.CLEANING_FAILED
    assert "authors must be a JSON list" in reject.detail


def test_openalex_abstract_rebuilt_from_raw_when_missing() -> None:
    raw = {"abstract_inverted_index": {"Open": [0], "access": [1], "grows.": [2]}}
    record = sanitize_record(replace(BASE, source_format="openalex", abstract=None, raw=raw))
    assert record.abstract == "Open access grows." and "abstract_rebuilt_from_inverted_index" in record.notes


def test_year_validation_notes_and_drops_impossible_years() -> None:
    notes: list[str] = []
    assert valid_year(1976, 2026, notes) == 1976
    assert valid_year(2027, 2026, notes) == 2027
    assert valid_year(3015, 2026, notes) is None
    assert valid_year("n.d.", 2026, notes) is None
    assert valid_year(1200, 2026, notes) is None
    assert notes == ["year_out_of_range:3015", "year_invalid:'n.d.'", "year_out_of_range:1200"]


def test_authors_normalized_with_display_name_and_orcid() -> None:
    notes: list[str] = []
    authors = normalize_authors(
        [
            {"given": "Vincent", "family": "Larivie\u0300re", "orcid": "https://orcid.org/0000-0002-1825-0097"},
            {"name": "  Juan   Pablo Alperín "},
            {"name": "", "given": None},
            "Collective Group",
        ],
        notes,
    )
    assert authors == [
        {"name": "Vincent Larivière", "given": "Vincent", "family": "Larivière", "orcid": "0000-0002-1825-0097"},
        {"name": "Juan Pablo Alperín", "given": None, "family": None, "orcid": None},
        {"name": "Collective Group", "given": None, "family": None, "orcid": None},
    ]
    assert notes == ["author_without_name"]


def test_orcid_checksum() -> None:
    notes: list[str] = []
    assert normalize_orcid("0000-0001-5109-3700", notes) == "0000-0001-5109-3700"
    assert normalize_orcid("0000000218250097", notes) == "0000-0002-1825-0097"
    assert normalize_orcid("0000-0002-1825-0098", notes) is None
    assert notes == ["orcid_invalid:0000-0002-1825-0098"]


def test_text_hash_ignores_case_punctuation_and_spacing() -> None:
    assert text_hash("Title", LONG, None) == text_hash("TITLE.", LONG.upper().replace(" ", "  "), None)
    assert text_hash("Title", LONG, None) != text_hash("Other", LONG, None)
    assert text_hash("Editorial", None, None) is None


def test_same_input_same_clean_hash_and_different_when_content_changes() -> None:
    assert sanitize_record(BASE).clean_hash == sanitize_record(replace(BASE, change_seq=99)).clean_hash
    assert sanitize_record(BASE).clean_hash != sanitize_record(replace(BASE, year=2021)).clean_hash


def test_language_from_source_tag_or_detected() -> None:
    assert sanitize_record(replace(BASE, language="eng")).language == "en"
    detected = sanitize_record(replace(BASE, abstract=LONG))
    assert (detected.language, detected.language_from) == ("en", "detected")
