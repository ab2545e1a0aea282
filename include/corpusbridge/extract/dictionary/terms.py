"""Term files as a curator writes them: TSV, CSV or JSONL (optionally gzipped), one row per synonym.

Only the workstation reads them (`corpusbridge dictionary build`); nodes get the built artifact.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corpusbridge.extract.dictionary.artifact import DictionaryError


@dataclass(frozen=True)
class TermRow:
    concept_id: str
    term: str
    line: int


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def _layout(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "csv" if suffix == ".csv" else "tsv"


def read_terms(path: Path) -> Iterator[TermRow]:
    """Rows of a TSV (`concept_id<TAB>term` header), CSV (`concept_id,term` header) or JSONL (`concept_id` plus
    `term` and/or `synonyms`/`terms` lists) dictionary, one row per synonym."""
    layout = _layout(path)
    with _open_text(path) as handle:
        if layout == "jsonl":
            yield from _read_jsonl(path, handle)
        else:
            yield from _read_delimited(path, handle, "," if layout == "csv" else "\t")


def _read_delimited(path: Path, handle: io.TextIOBase, delimiter: str) -> Iterator[TermRow]:
    reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["concept_id", "term"]:
        raise DictionaryError(
            f"{path}: first line must be the header 'concept_id{delimiter}term' (got {_excerpt(header)}); add it"
        )
    for row in reader:
        if len(row) != 2 or not row[0].strip():
            raise DictionaryError(
                f"{path}:{reader.line_num}: expected 2 fields 'concept_id{delimiter}term' with a concept id, "
                f"got {_excerpt(row)}; fix or remove the line"
            )
        yield TermRow(row[0].strip(), row[1], reader.line_num)


def _excerpt(fields: list[str] | None) -> str:
    """The start of a bad line, never the whole: a path given by mistake may name a file of secrets."""
    text = repr(fields)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_jsonl(path: Path, handle: io.TextIOBase) -> Iterator[TermRow]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DictionaryError(f"{path}:{number}: not JSON ({exc}); fix the line") from exc
        if not isinstance(record, dict) or "concept_id" not in record:
            raise DictionaryError(f"{path}:{number}: a JSON object needs a 'concept_id' key; fix the line")
        concept = str(record["concept_id"]).strip()
        terms = ([record["term"]] if "term" in record else []) + record.get("synonyms", []) + record.get("terms", [])
        if not concept or not terms or not all(isinstance(t, str) for t in terms):
            raise DictionaryError(f"{path}:{number}: needs a concept_id and string 'term'/'synonyms'/'terms'")
        for term in terms:
            yield TermRow(concept, term, number)
