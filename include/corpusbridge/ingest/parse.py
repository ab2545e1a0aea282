"""One crawled file -> a stream of Records and Quarantined items; file-level damage is quarantined too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from corpusbridge.ingest.formats import jats, json_works, medline
from corpusbridge.ingest.formats.detect import detect_format
from corpusbridge.ingest.formats.xml_records import parse_element, split_elements
from corpusbridge.ingest.reader import GZIP_ERRORS, open_source
from corpusbridge.ingest.records import Quarantined, Record, RecordError

Parsed = Record | Quarantined
DEFAULT_RECORD_CAP = 16 * 1024 * 1024
_HEAD = 64 * 1024


@dataclass
class FileParse:
    """Filled in while the file is parsed; complete once the item stream is exhausted."""

    format: str = "unknown"
    sha256: str = ""
    bytes_read: int = 0


def parse_file(path: Path, info: FileParse, cap: int = DEFAULT_RECORD_CAP) -> Iterator[Parsed]:
    """Every record of a file, in order. Never raises for bad content: damage becomes Quarantined items."""
    source = open_source(path)
    content = source.content()  # held until finish(): a buffered stream closes its raw reader when collected
    try:
        yield from _parse_content(content, path.name, info, cap)
    finally:
        info.sha256 = source.finish()
        info.bytes_read = source.bytes_read
        source.close()


def _parse_content(content: BinaryIO, name: str, info: FileParse, cap: int) -> Iterator[Parsed]:
    try:
        head = content.peek(_HEAD)[:_HEAD] if hasattr(content, "peek") else b""
    except GZIP_ERRORS as exc:
        yield Quarantined.of("file", "TruncatedGzip", f"gzip stream unreadable: {exc}")
        return
    if not head.strip():
        yield Quarantined.of("file", "EmptyFile", "file is empty (or only whitespace)")
        return
    detected = detect_format(name, head)
    if detected is None:
        info.format = "unknown"
        yield Quarantined.of("file", "UnknownFormat", "content is not JSON, JSON Lines, MEDLINE or JATS XML", head)
        return
    info.format = detected
    items = _items(content, detected, head, cap)
    last = "the start of the file"
    try:
        for item in items:
            last = item.locator
            yield item
    except GZIP_ERRORS as exc:
        yield Quarantined.of(f"after {last}", "TruncatedGzip", f"gzip stream ends early or is corrupt: {exc}")


def _items(content: BinaryIO, detected: str, head: bytes, cap: int) -> Iterator[Parsed]:
    if detected == "jsonl":
        return json_works.parse_jsonl(content, cap)
    if detected == "json":
        return json_works.parse_json_document(content, cap)
    if detected == "medline":
        return _xml_items(content, medline.record_tags(head), medline.to_record, cap)
    if detected == "jats":
        return _xml_items(content, jats.RECORD_TAGS, jats.to_record, cap)
    # A format detect.py learned without a parser here: a programming error, never a silent parse as something else.
    raise ValueError(f"detected format {detected!r} has no parser in ingest/parse.py")


def _xml_items(content: BinaryIO, tags: tuple[str, ...], convert, cap: int) -> Iterator[Parsed]:  # type: ignore[no-untyped-def]
    found = False
    for element in split_elements(content, tags, cap):
        found = True
        locator = f"element at byte {element.offset}"
        if element.too_large:
            yield Quarantined.of(locator, "RecordTooLarge", f"element is larger than the {cap}-byte cap", element.data)
        elif not element.complete:
            yield Quarantined.of(locator, "TruncatedRecord", "file ends inside this element", element.data)
        else:
            yield _convert_xml(element.data, locator, convert)
    if not found:
        yield Quarantined.of("file", "NoRecords", f"no <{'|'.join(tags)}> element found")


def _convert_xml(data: bytes, locator: str, convert) -> Parsed:  # type: ignore[no-untyped-def]
    try:
        return convert(parse_element(data), locator, data.decode("utf-8"))
    except RecordError as exc:
        return Quarantined.of(locator, exc.error_class, exc.message, data)
    except RecursionError as exc:  # the nesting cap: expat has none, the converters recurse (limit ~1000 levels)
        return Quarantined.of(locator, "NestingTooDeep", f"element nested too deep to convert: {exc}", data)
