"""What a format parser yields: a normalized record, or a quarantine item saying why a record was not loaded."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

# What is kept of a rejected record's bytes: enough to diagnose, bounded for a 2 GB garbage line.
QUARANTINE_RAW_CAP = 64 * 1024


class RecordError(Exception):
    """A single record cannot be loaded; `error_class` is the short, stable reason code stored in quarantine."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


def record_text(data: bytes, nul_marker: bytes | None = None) -> str:
    """A record's bytes as text: NUL characters (raw, or `nul_marker` such as JSON's escaped one) and invalid UTF-8
    are RecordErrors, since neither PostgreSQL text nor XML can hold them."""
    if b"\x00" in data or (nul_marker is not None and nul_marker in data):
        raise RecordError("NulByte", "record contains a NUL character, which PostgreSQL text and XML cannot hold")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("InvalidUtf8", f"invalid UTF-8 ({exc.reason}) at byte {exc.start} of the record") from exc


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a setattr call per field, per record
class Record:
    doc_id: str
    source_format: str
    locator: str
    title: str | None
    abstract: str | None
    full_text: str | None
    authors: list[dict[str, Any]]
    year: int | None
    venue: str | None
    language: str | None
    raw: Any
    # The record's JSON exactly as it arrived, when it was one whole JSON text: stored as is, never re-encoded.
    raw_json: str | None = None

    def content_hash(self) -> str:
        """Hash of the normalized content only, so a re-crawl that changes a citation count is not a change."""
        payload = [self.title, self.abstract, self.full_text, self.authors, self.year, self.venue, self.language]
        return hashlib.sha256(json_bytes(payload, sort_keys=True)).hexdigest()


@dataclass(frozen=True)
class Quarantined:
    locator: str
    error_class: str
    message: str
    raw: bytes = b""
    raw_truncated: bool = field(default=False)

    @classmethod
    def of(cls, locator: str, error_class: str, message: str, raw: bytes = b"") -> Quarantined:
        return cls(locator, error_class, message, raw[:QUARANTINE_RAW_CAP], len(raw) > QUARANTINE_RAW_CAP)


def json_bytes(value: Any, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON, by orjson (5-10x the standard encoder); the standard encoder takes what orjson refuses
    (integers beyond 64 bits), so only lone surrogates, which PostgreSQL refuses too, raise ValueError."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for lone surrogates


_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)


def normalize_doi(value: object) -> str | None:
    """`https://doi.org/10.1/ABC` -> `10.1/abc`; None when the value is not a DOI (callers fall back to source ids)."""
    if not isinstance(value, str):
        return None
    doi = _DOI_PREFIX.sub("", value.strip()).strip().lower()
    if doi.startswith("10.") and "/" in doi and " " not in doi:
        return doi
    return None


def document_id(doi: object, source_ids: list[tuple[str, object]]) -> str:
    """Stable id: `doi:<doi>` when a DOI is present, else the first usable `<namespace>:<source id>`."""
    normalized = normalize_doi(doi)
    if normalized:
        return f"doi:{normalized}"
    for namespace, value in source_ids:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            return f"{namespace}:{value.strip()}"
    raise RecordError("MissingId", "record has no DOI and no source id")


def expect_str(obj: dict[str, Any], key: str) -> str | None:
    """The field as a string, None when absent or null; a wrong type is a RecordError naming the field."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise RecordError("WrongFieldType", f"field {key!r} must be a string, got {type(value).__name__}")


def expect_year(value: object, key: str = "year") -> int | None:
    """A plausible publication year, from an int or a numeric string."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip()[:4].isdigit():
        value = int(value.strip()[:4])
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1000 <= value <= 2999 else None
    raise RecordError("WrongFieldType", f"field {key!r} must be a year, got {type(value).__name__}")


def person(name: str | None = None, given: str | None = None, family: str | None = None, **extra: Any) -> dict:
    """One author as stored in raw_documents.authors: always a `name`, parts when known."""
    full = name or " ".join(p for p in (given, family) if p)
    entry: dict[str, Any] = {"name": full}
    if given:
        entry["given"] = given
    if family:
        entry["family"] = family
    entry.update({k: v for k, v in extra.items() if v})
    return entry
