"""Plain JSON records `{id, title, abstract, ...}`: the lowest common denominator of home-made crawls."""

from __future__ import annotations

from typing import Any

from corpusbridge.ingest.records import Record, RecordError, document_id, expect_str, expect_year, person

FORMAT = "jsonl"


def _authors(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError("WrongFieldType", f"field 'authors' must be a list, got {type(value).__name__}")
    authors = []
    for a in value:
        if isinstance(a, str):
            authors.append(person(a))
        elif isinstance(a, dict) and isinstance(a.get("name"), str):
            authors.append(person(a["name"], a.get("given"), a.get("family")))
        else:
            raise RecordError("WrongFieldType", "each author must be a string or an object with a 'name'")
    return authors


def to_record(obj: dict[str, Any], locator: str) -> Record:
    source_id = obj.get("id")
    if source_id is not None and not isinstance(source_id, str | int):
        raise RecordError("WrongFieldType", f"field 'id' must be a string or integer, got {type(source_id).__name__}")
    return Record(
        doc_id=document_id(obj.get("doi"), [("id", source_id)]),
        source_format=FORMAT,
        locator=locator,
        title=expect_str(obj, "title"),
        abstract=expect_str(obj, "abstract"),
        full_text=expect_str(obj, "full_text"),
        authors=_authors(obj.get("authors")),
        year=expect_year(obj.get("year")),
        venue=expect_str(obj, "venue"),
        language=expect_str(obj, "language"),
        raw=obj,
    )
