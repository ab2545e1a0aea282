"""Crossref works: `message` wrappers, list titles, JATS abstracts, partial date-parts."""

from __future__ import annotations

from typing import Any

from corpusbridge.ingest.records import Record, RecordError, document_id, expect_str, expect_year, person

FORMAT = "crossref"
_DATE_FIELDS = ("issued", "published", "published-online", "published-print", "created")


def looks_like(obj: dict[str, Any]) -> bool:
    return "DOI" in obj or ("container-title" in obj and "type" in obj)


def _first_string(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, list):
        strings = [v for v in value if isinstance(v, str) and v.strip()]
        return strings[0] if strings else None
    raise RecordError("WrongFieldType", f"field {key!r} must be a list of strings, got {type(value).__name__}")


def _year(obj: dict[str, Any]) -> int | None:
    for key in _DATE_FIELDS:
        parts = (obj.get(key) or {}).get("date-parts") if isinstance(obj.get(key), dict) else None
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0] and parts[0][0] is not None:
            return expect_year(parts[0][0], f"{key}.date-parts")
    return None


def _authors(obj: dict[str, Any]) -> list[dict[str, Any]]:
    raw = obj.get("author") or []
    if not isinstance(raw, list):
        raise RecordError("WrongFieldType", "field 'author' must be a list")
    authors = []
    for a in raw:
        if isinstance(a, dict) and (a.get("family") or a.get("name")):
            authors.append(person(a.get("name"), a.get("given"), a.get("family"), orcid=a.get("ORCID")))
    return authors


def to_record(obj: dict[str, Any], locator: str) -> Record:
    return Record(
        doc_id=document_id(obj.get("DOI"), []),
        source_format=FORMAT,
        locator=locator,
        title=_first_string(obj, "title"),
        abstract=expect_str(obj, "abstract"),
        full_text=None,
        authors=_authors(obj),
        year=_year(obj),
        venue=_first_string(obj, "container-title"),
        language=expect_str(obj, "language"),
        raw=obj,
    )
