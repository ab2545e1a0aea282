"""JSON and JSON Lines files: unwrap API envelopes, pick the shape (OpenAlex, Crossref, plain) per record."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from corpusbridge.ingest.formats import crossref, openalex, plain
from corpusbridge.ingest.reader import iter_lines
from corpusbridge.ingest.records import Quarantined, Record, RecordError, record_text

Parsed = Record | Quarantined


def _reject_constant(name: str) -> None:
    raise RecordError("MalformedJson", f"{name} is not valid JSON (PostgreSQL jsonb would refuse it)")


# One decoder for all records: json.loads with any keyword argument builds a new decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


BOM = "\ufeff"
_BOM_BYTES = BOM.encode()


def decode_json(data: bytes) -> tuple[Any, str]:
    """Strict JSON from bytes, with its text; every way it can fail is a RecordError with a stable class."""
    text = record_text(data, nul_marker=b"\\u0000")
    return decode_text(_DECODER.decode, text), text


def decode_text(decode, text: str):  # type: ignore[no-untyped-def]
    """`decode(text)` with the decoder's non-JSON failures (deep nesting, huge integers) as RecordErrors."""
    try:
        return decode(text)
    except json.JSONDecodeError as exc:
        # json's own messages may end in "at" ("Unterminated string starting at"); a one-line record (a JSON Lines
        # line) has only a column, its line being the file's, which the locator names.
        where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} of the record, column {exc.colno}"
        raise RecordError("MalformedJson", f"{exc.msg.removesuffix(' at')} at {where}") from exc
    except RecursionError as exc:  # the nesting cap: the interpreter's recursion limit (~1000 levels)
        raise RecordError("NestingTooDeep", "JSON nested deeper than the recursion limit (~1000 levels)") from exc
    except ValueError as exc:  # Python refuses integers over 4300 digits (CVE-2020-10735): so do we
        raise RecordError("NumberTooLong", f"a number in this record is too long: {str(exc)[:200]}") from exc


def works_in(obj: Any, locator: str) -> Iterator[tuple[str, Any]]:
    """The works inside one JSON value: a Crossref `message` (single or `items`), an OpenAlex page, a top-level array
    of works (as a large file's array is streamed item by item), or itself."""
    if isinstance(obj, list):
        yield from ((f"{locator} item {i}", item) for i, item in enumerate(obj))
        return
    if isinstance(obj, dict):
        message = obj.get("message")
        if isinstance(message, dict) and ("message-type" in obj or "status" in obj):
            items = message.get("items")
            if isinstance(items, list):
                yield from ((f"{locator} item {i}", item) for i, item in enumerate(items))
                return
            obj = message
        elif isinstance(obj.get("results"), list) and "meta" in obj:
            yield from ((f"{locator} item {i}", item) for i, item in enumerate(obj["results"]))
            return
    yield locator, obj


def to_record(obj: Any, locator: str) -> Record:
    if not isinstance(obj, dict):
        raise RecordError("WrongFieldType", f"a record must be a JSON object, got {type(obj).__name__}")
    if openalex.looks_like(obj):
        return openalex.to_record(obj, locator)
    if crossref.looks_like(obj):
        return crossref.to_record(obj, locator)
    return plain.to_record(obj, locator)


def parse_json_bytes(data: bytes, locator: str) -> Iterator[Parsed]:
    """Every record in one JSON text (a line, or a whole small file)."""
    try:
        value, text = decode_json(data)
    except RecordError as exc:
        yield Quarantined.of(locator, exc.error_class, exc.message, data)
        return
    # Escaped lone surrogates pass json.loads but not jsonb: such text takes the re-encoding path, which rejects them.
    reusable = None if _SURROGATE_ESCAPE.search(text) else text
    for item in _convert_all(works_in(value, locator)):
        if reusable is not None and isinstance(item, Record) and item.raw is value:
            item.raw_json = reusable
        yield item


def _convert_all(works: Iterator[tuple[str, Any]]) -> Iterator[Parsed]:
    for item_locator, work in works:
        try:
            yield to_record(work, item_locator)
        except RecordError as exc:
            yield Quarantined.of(item_locator, exc.error_class, exc.message, _raw_of(work))
        except RecursionError:  # a converter walking a deep value: the record is hostile, not the file
            yield Quarantined.of(item_locator, "NestingTooDeep", "record nested too deep to convert", _raw_of(work))


def _raw_of(work: Any) -> bytes:
    try:
        return json.dumps(work, ensure_ascii=False).encode("utf-8", "replace")
    except (RecursionError, ValueError):
        return repr(type(work)).encode()


def parse_jsonl(stream: BinaryIO, cap: int) -> Iterator[Parsed]:
    for line in iter_lines(stream, cap):
        locator = f"line {line.number}"
        data = line.data.removeprefix(_BOM_BYTES) if line.number == 1 else line.data  # a BOM is not the record's
        if line.too_long:
            yield Quarantined.of(locator, "RecordTooLarge", f"line is longer than the {cap}-byte record cap", data)
        elif data.strip():
            for item in parse_json_bytes(data, locator):
                if line.last_unended and isinstance(item, Quarantined) and item.error_class == "MalformedJson":
                    # The file ends inside this record: most likely read while it was still being written.
                    item = Quarantined.of(locator, "TruncatedRecord", f"the file ends inside this record "
                                          f"({item.message})", data)  # fmt: skip
                yield item


def parse_json_document(stream: BinaryIO, cap: int) -> Iterator[Parsed]:
    """A whole .json file: parsed at once when it fits the record cap, else streamed item by item."""
    data = stream.read(cap + 1).removeprefix(_BOM_BYTES)
    if len(data) <= cap:
        if data.strip():
            yield from parse_json_bytes(data, "document")
        return
    yield from _stream_large_document(stream, data, cap)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ARRAY_START = re.compile(rb'^\s*\[|"(?:items|results)"\s*:\s*\[')


def _stream_large_document(stream: BinaryIO, head: bytes, cap: int) -> Iterator[Parsed]:
    """Items of the one big array in a large JSON file (`[...]`, Crossref `items`, OpenAlex `results`)."""
    match = _ARRAY_START.search(head, 0, 1 << 20)
    if not match:
        yield Quarantined.of("document", "RecordTooLarge", f"JSON document over {cap} bytes with no item array", head)
        return
    utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")  # a character may straddle two reads
    buffer = utf8.decode(head[match.end() :])
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    index, exhausted = 0, False
    while True:
        buffer = buffer.lstrip().removeprefix(",").lstrip()
        if buffer.startswith("]") or (exhausted and not buffer):
            return
        try:
            value, end = decode_text(decoder.raw_decode, buffer)  # deep nesting: RecursionError -> NestingTooDeep
        except RecordError as exc:
            if exc.error_class == "MalformedJson" and not exhausted and len(buffer) <= cap:
                more = stream.read(1 << 22)
                exhausted = not more
                buffer += utf8.decode(more, final=exhausted)
                continue
            raw = buffer.encode("utf-8", "surrogateescape")
            message = f"{exc.message}; the rest of the document is kept raw"
            yield Quarantined.of(f"item {index}", exc.error_class, message, raw)
            return
        yield from _convert_all(iter([(f"item {index}", value)]))
        buffer, index = buffer[end:], index + 1
