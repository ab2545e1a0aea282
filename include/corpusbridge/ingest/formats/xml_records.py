"""Record-by-record XML: split a stream at record elements, then parse each record on its own.

Parsing each record alone (instead of one iterparse over the file) means a malformed record costs only that
record: it is quarantined with its bytes and the records after it still load.
"""

from __future__ import annotations

import html.entities
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple
from xml.sax.saxutils import escape

from corpusbridge.ingest.records import RecordError, record_text

_READ = 1 << 20
# Named entities that crawled XML uses without shipping its DTD (&nbsp;, &eacute;, ...).
_ENTITIES = {name: chr(code) for name, code in html.entities.name2codepoint.items()}
_NAMESPACES = (
    'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ali="http://www.niso.org/schemas/ali/1.0/"'
)


class RawElement(NamedTuple):  # one per XML record: a tuple is the cheapest thing to build
    offset: int  # byte offset of the element in the decompressed content
    data: bytes  # the element's bytes (at most `cap` when too_large)
    complete: bool  # False: the stream ended inside this element
    too_large: bool


def split_elements(stream: BinaryIO, tags: tuple[str, ...], cap: int) -> Iterator[RawElement]:
    """The bytes of every top-level `<tag ...>...</tag>` in the stream (tags must not nest in themselves)."""
    start_re = re.compile(rb"<(" + b"|".join(t.encode() for t in tags) + rb")[\s>]")
    buffer, base, eof = bytearray(), 0, False
    while True:
        match = start_re.search(buffer)
        if match is None:
            if eof:
                return
            keep = max(0, len(buffer) - 64)  # a start tag may straddle two reads
            del buffer[:keep]
            base += keep
            chunk = stream.read(_READ)
            eof, buffer = not chunk, buffer + chunk
            continue
        element, consumed, eof = _take_element(stream, buffer, match, cap, eof)
        yield RawElement(base + match.start(), *element)
        del buffer[:consumed]
        base += consumed


def _take_element(
    stream: BinaryIO, buffer: bytearray, match: re.Match[bytes], cap: int, eof: bool
) -> tuple[tuple[bytes, bool, bool], int, bool]:
    end_tag = b"</" + match.group(1) + b">"
    start, searched, trimmed = match.start(), match.start(), False
    while True:
        end = buffer.find(end_tag, searched)
        if end >= 0:
            stop = end + len(end_tag)
            too_large = trimmed or stop - start > cap
            return (bytes(buffer[start : min(stop, start + cap)]), True, too_large), stop, eof
        if eof:
            too_large = trimmed or len(buffer) - start > cap
            return (bytes(buffer[start : start + cap]), False, too_large), len(buffer), eof
        searched = max(start, len(buffer) - len(end_tag))
        if len(buffer) - start > cap:  # keep the head for quarantine, drop the middle of a runaway element
            del buffer[start + cap : len(buffer) - len(end_tag)]
            searched, trimmed = start + cap, True
        chunk = stream.read(_READ)
        eof = not chunk
        buffer += chunk


def parse_element(data: bytes) -> ET.Element:
    """One record's bytes as an Element; encoding and well-formedness problems become RecordErrors."""
    text = record_text(data)
    try:
        return _parse(text)
    except ET.ParseError as exc:
        if "unbound prefix" not in str(exc):
            raise RecordError("MalformedXml", f"not well-formed XML: {exc}") from exc
    try:  # namespace prefixes declared on a wrapper element we cut away
        return _parse(f"<wrap {_NAMESPACES}>{text}</wrap>")[0]
    except ET.ParseError as exc:
        raise RecordError("MalformedXml", f"not well-formed XML: {exc}") from exc


def _parse(text: str) -> ET.Element:
    parser = ET.XMLParser()
    parser.entity.update(_ENTITIES)
    parser.feed(text)
    return parser.close()


def inner_xml(element: ET.Element | None) -> str | None:
    """The element's content as an XML fragment (markup kept, text escaped): sanitize strips it later."""
    if element is None:
        return None
    parts = [escape(element.text or "")]
    parts.extend(ET.tostring(child, encoding="unicode") for child in element)
    return "".join(parts).strip() or None


def children(element: ET.Element | None, *tags: str) -> list[ET.Element]:
    """`element.findall("a/b/c")` as `children(element, "a", "b", "c")`, same elements in the same order: a path
    with a slash goes through ElementPath in Python, a single tag is matched in C (about a tenth of the cost of
    a MEDLINE record)."""
    level = [] if element is None else [element]
    for tag in tags:
        level = [found for parent in level for found in parent.findall(tag)]
    return level


def child(element: ET.Element | None, *tags: str) -> ET.Element | None:
    """`element.find("a/b/c")`: the first of `children`."""
    found = children(element, *tags)
    return found[0] if found else None


def child_text(element: ET.Element | None, *tags: str) -> str | None:
    """`element.findtext("a/b/c")`: None when absent, "" when empty."""
    found = child(element, *tags)
    return None if found is None else (found.text or "")


def text_of(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    return "".join(element.itertext()).strip() or None
