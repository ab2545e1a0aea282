"""OpenAlex works: inverted-index abstracts, URL ids, nullable titles."""

from __future__ import annotations

from itertools import chain, repeat
from typing import Any

from corpusbridge.ingest.records import Record, RecordError, document_id, expect_str, expect_year, person

FORMAT = "openalex"


def looks_like(obj: dict[str, Any]) -> bool:
    work_id = obj.get("id")
    return "abstract_inverted_index" in obj or (isinstance(work_id, str) and "openalex.org/" in work_id)


def rebuild_abstract(index: object) -> str | None:
    """Words back in position order from `{"word": [positions]}`; a malformed index is a RecordError."""
    if index is None:
        return None
    if not isinstance(index, dict):
        raise RecordError("WrongFieldType", f"abstract_inverted_index must be an object, got {type(index).__name__}")
    lists = list(index.values())
    if set(map(type, lists)) <= {list}:
        positions = list(chain.from_iterable(lists))
        if set(map(type, positions)) <= {int}:  # the common case, checked and flattened at C speed
            words = chain.from_iterable(map(repeat, index, map(len, lists)))
            return " ".join([word for _, word in sorted(zip(positions, words, strict=True))]) or None
    return _rebuild_checked(index)


def _rebuild_checked(index: dict) -> str | None:
    """The slow path, which names the malformed entry."""
    placed: list[tuple[int, str]] = []
    for word, positions in index.items():
        if not isinstance(positions, list) or not all(isinstance(p, int) for p in positions):
            raise RecordError("WrongFieldType", f"abstract_inverted_index[{word!r}] must be a list of integers")
        placed.extend((p, word) for p in positions)
    return " ".join(word for _, word in sorted(placed)) or None


def _short_id(value: object) -> object:
    return value.rsplit("/", 1)[-1] if isinstance(value, str) else value


def _authors(obj: dict[str, Any]) -> list[dict[str, Any]]:
    authorships = obj.get("authorships") or []
    if not isinstance(authorships, list):
        raise RecordError("WrongFieldType", "field 'authorships' must be a list")
    authors = []
    for entry in authorships:
        author = entry.get("author") if isinstance(entry, dict) else None
        if isinstance(author, dict) and isinstance(author.get("display_name"), str):
            authors.append(person(author["display_name"], orcid=author.get("orcid")))
    return authors


def _venue(obj: dict[str, Any]) -> str | None:
    for key in ("primary_location", "host_venue"):
        location = obj.get(key)
        if isinstance(location, dict):
            source = location.get("source") if key == "primary_location" else location
            if isinstance(source, dict) and isinstance(source.get("display_name"), str):
                return source["display_name"]
    return None


def to_record(obj: dict[str, Any], locator: str) -> Record:
    ids = obj.get("ids")
    ids = ids if isinstance(ids, dict) else {}
    return Record(
        doc_id=document_id(
            obj.get("doi"), [("openalex", _short_id(obj.get("id"))), ("pmid", _short_id(ids.get("pmid")))]
        ),
        source_format=FORMAT,
        locator=locator,
        title=expect_str(obj, "title") or expect_str(obj, "display_name"),
        abstract=rebuild_abstract(obj.get("abstract_inverted_index")),
        full_text=None,
        authors=_authors(obj),
        year=expect_year(obj.get("publication_year"), "publication_year"),
        venue=_venue(obj),
        language=expect_str(obj, "language"),
        raw=obj,
    )
