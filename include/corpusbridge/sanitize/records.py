"""One raw document row in, one clean record or one reject (with its reason) out. Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from corpusbridge.sanitize.language import choose_language
from corpusbridge.sanitize.text import clean_text, clean_title, rebuild_inverted_abstract, to_nfc

MIN_YEAR = 1500
# Below this many characters of abstract + body, two documents sharing a text are not "the same document"
# (think of a thousand title-only records called "Editorial").
MIN_DUPLICATE_TEXT = 100
_ORCID = re.compile(r"(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dX])", re.I)
_NON_WORD = re.compile(r"[\W_]+")


class RejectReason(StrEnum):
    NO_TEXT = "no_text"
    CLEANING_FAILED = "cleaning_failed"


@dataclass(frozen=True)
class RawDocument:
    doc_id: str
    source_format: str
    title: str | None
    abstract: str | None
    full_text: str | None
    authors: Any
    year: int | None
    venue: str | None
    language: str | None
    raw: Any
    change_seq: int


@dataclass(frozen=True)
class CleanRecord:
    doc_id: str
    source_format: str
    title: str | None
    abstract: str | None
    full_text: str | None
    authors: list[dict[str, str | None]]
    year: int | None
    venue: str | None
    language: str
    language_from: str
    notes: list[str]
    text_hash: str | None
    source_seq: int
    clean_hash: str = field(default="")


@dataclass(frozen=True)
class Reject:
    doc_id: str
    source_seq: int
    reason: RejectReason
    detail: str


def sanitize_record(raw: RawDocument, *, this_year: int | None = None) -> CleanRecord | Reject:
    """Clean one document; any failure becomes a reject that names the document and the cause."""
    try:
        return _sanitize(raw, this_year or dt.date.today().year)
    except Exception as exc:  # one malformed record must not stop the run, nor vanish
        detail = f"{raw.doc_id}: {type(exc).__name__}: {exc}; fix the raw record and re-ingest it"
        return Reject(raw.doc_id, raw.change_seq, RejectReason.CLEANING_FAILED, detail[:2000])


def _sanitize(raw: RawDocument, this_year: int) -> CleanRecord | Reject:
    notes: list[str] = []
    title = clean_title(raw.title)
    abstract = clean_text(raw.abstract) or _abstract_from_raw(raw, notes)
    full_text = clean_text(raw.full_text)
    if not (title or abstract or full_text):
        detail = f"{raw.doc_id}: title, abstract and full text are all empty after cleaning"
        return Reject(raw.doc_id, raw.change_seq, RejectReason.NO_TEXT, detail)
    year = valid_year(raw.year, this_year, notes)
    language = choose_language(raw.language, " ".join(filter(None, (title, abstract))))
    record = CleanRecord(
        doc_id=raw.doc_id,
        source_format=raw.source_format,
        title=title,
        abstract=abstract,
        full_text=full_text,
        authors=normalize_authors(raw.authors, notes),
        year=year,
        venue=clean_title(raw.venue),
        language=language.code,
        language_from=language.origin,
        notes=notes,
        text_hash=text_hash(title, abstract, full_text),
        source_seq=raw.change_seq,
    )
    return _with_clean_hash(record)


def _abstract_from_raw(raw: RawDocument, notes: list[str]) -> str | None:
    """OpenAlex ships abstracts only as an inverted index; ingestion rebuilds it, this re-checks when it did not."""
    if raw.source_format != "openalex" or not isinstance(raw.raw, Mapping):
        return None
    rebuilt = clean_text(rebuild_inverted_abstract(raw.raw.get("abstract_inverted_index")))
    if rebuilt:
        notes.append("abstract_rebuilt_from_inverted_index")
    return rebuilt


def valid_year(year: Any, this_year: int, notes: list[str]) -> int | None:
    """A publication year between 1500 and next year; anything else is recorded in notes and dropped."""
    if year is None:
        return None
    try:
        value = int(year)
    except (TypeError, ValueError):
        notes.append(f"year_invalid:{year!r}"[:80])
        return None
    if MIN_YEAR <= value <= this_year + 1:
        return value
    notes.append(f"year_out_of_range:{value}")
    return None


def normalize_authors(authors: Any, notes: list[str]) -> list[dict[str, str | None]]:
    """Authors as {name, given, family, orcid}: cleaned text, a display name always set, bare valid ORCIDs."""
    if authors is None:
        return []
    if not isinstance(authors, list):
        raise TypeError(f"authors must be a JSON list, got {type(authors).__name__}")
    result = []
    for entry in authors:
        author = _normalize_author(entry, notes)
        if author:
            result.append(author)
    return result


def _normalize_author(entry: Any, notes: list[str]) -> dict[str, str | None] | None:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping):
        notes.append("author_not_an_object")
        return None
    given = _one_line(entry.get("given"))
    family = _one_line(entry.get("family"))
    name = _one_line(entry.get("name")) or " ".join(filter(None, (given, family))) or None
    if not name:
        notes.append("author_without_name")
        return None
    return {"name": name, "given": given, "family": family, "orcid": normalize_orcid(entry.get("orcid"), notes)}


def _one_line(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if value.isprintable() and "<" not in value and "&" not in value:  # the common case, 5x cheaper
        return " ".join(to_nfc(value).split()) or None
    cleaned = clean_text(value)
    return " ".join(cleaned.split()) if cleaned else None


def normalize_orcid(value: Any, notes: list[str]) -> str | None:
    """`https://orcid.org/0000-0002-1825-0097` -> `0000-0002-1825-0097`; a bad checksum is noted and dropped."""
    if not value or not isinstance(value, str):
        return None
    match = _ORCID.search(value)
    digits = "".join(match.groups()).upper() if match else ""
    if not match or not _orcid_checksum_ok(digits):
        notes.append(f"orcid_invalid:{value}"[:80])
        return None
    return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def _orcid_checksum_ok(digits: str) -> bool:
    """ISO 7064 MOD 11-2, the check digit ORCID uses."""
    total = 0
    for ch in digits[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def text_hash(title: str | None, abstract: str | None, full_text: str | None) -> str | None:
    """Hash of the case- and punctuation-folded text, or None when there is too little text to link on."""
    body = " ".join(filter(None, (abstract, full_text)))
    if len(body) < MIN_DUPLICATE_TEXT:
        return None
    folded = _NON_WORD.sub(" ", f"{title or ''} {body}".casefold()).strip()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


_HASHED_FIELDS = tuple(f.name for f in fields(CleanRecord) if f.name not in ("clean_hash", "source_seq"))


def _with_clean_hash(record: CleanRecord) -> CleanRecord:
    """The hash of everything a clean row holds: an unchanged hash means the row need not be written."""
    payload = [getattr(record, name) for name in _HASHED_FIELDS]
    digest = hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()
    return replace(record, clean_hash=digest)
