"""What to export: a frozen, JSON-able description of a set of clean documents.

The same Selection is stored with the batch it produced, so a rerun can recognise its own batch, and the DAG can pass
it between tasks as plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from corpusbridge.ingest.formats import SOURCE_FORMATS

Mode = Literal["pending", "all"]
MODES: tuple[Mode, ...] = ("pending", "all")


class SelectionError(ValueError):
    """A selection that cannot be run; the message names the field and the fix."""


@dataclass(frozen=True)
class Selection:
    """Clean canonical documents to export.

    `pending` (default): documents new or changed since their last successful load for `dictionary_version` and
    `model_hash`, and not in a batch still in flight for them. A None dictionary or model means "any": a document
    loaded with any dictionary (any model) at its current clean version is then not pending. `all`: every document
    the filters keep. `cleaned_from`/`cleaned_to` is a half-open interval on the time the clean row last changed.
    """

    mode: Mode = "pending"
    year_from: int | None = None
    year_to: int | None = None
    source: str | None = None
    limit: int | None = None
    query: str | None = None
    doc_ids: tuple[str, ...] | None = None
    cleaned_from: datetime | None = None
    cleaned_to: datetime | None = None
    dictionary_version: str | None = None
    model_hash: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SelectionError(f"selection mode {self.mode!r} is not one of {MODES}")
        if self.limit is not None and self.limit < 1:
            raise SelectionError(f"limit must be >= 1, got {self.limit}; leave it out to export everything")
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise SelectionError(f"year_from {self.year_from} is after year_to {self.year_to}; swap them")
        if self.cleaned_from and self.cleaned_to and self.cleaned_from >= self.cleaned_to:
            raise SelectionError(f"cleaned_from {self.cleaned_from} is not before cleaned_to {self.cleaned_to}")
        if self.doc_ids is not None and not isinstance(self.doc_ids, tuple):
            object.__setattr__(self, "doc_ids", tuple(self.doc_ids))
        if self.query is not None and not self.query.strip():
            object.__setattr__(self, "query", None)

    def describe(self) -> str:
        """The selection in a log line: its mode and the filters set (versions shortened, doc ids counted)."""
        parts = [self.mode, *self._filters()]
        if self.dictionary_version:
            parts.append(f"dictionary {self.dictionary_version[:12]}")
        if self.model_hash:
            parts.append(f"model {self.model_hash[:12]}")
        return ", ".join(parts)

    def why_empty(self) -> str:
        """What a selection that found nothing means, and what to change: a filter that matches nothing is a
        different case from a pending selection with nothing new."""
        filters = self._filters()
        if filters:
            unknown = self.source is not None and self.source not in SOURCE_FORMATS
            hint = f" (source is a document's format: one of {', '.join(SOURCE_FORMATS)})" if unknown else ""
            loaded = " that is not loaded yet with this dictionary and model" if self.mode == "pending" else ""
            return f"no clean document matches {' and '.join(filters)}{loaded}{hint}"
        if self.mode == "pending":
            return (
                "no clean document is new or changed since its last load with this dictionary and model: ingest "
                "and sanitize new files first, or reprocess to export loaded ones again (`run --reprocess`, "
                "`export --all`, Param reprocess)"
            )
        return "there is no clean document yet: ingest and sanitize first"

    def _filters(self) -> list[str]:
        named = [
            (self.year_from is not None, f"year >= {self.year_from}"),
            (self.year_to is not None, f"year <= {self.year_to}"),
            (self.source is not None, f"source {self.source!r}"),
            (self.query is not None, f"query {self.query!r}"),
            (self.doc_ids is not None, f"{len(self.doc_ids or ())} listed doc ids"),
            (self.cleaned_from is not None, f"cleaned from {self.cleaned_from}"),
            (self.cleaned_to is not None, f"cleaned before {self.cleaned_to}"),
            (self.limit is not None, f"limit {self.limit}"),
        ]
        return [text for is_set, text in named if is_set]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (datetimes as ISO 8601, doc_ids as a sorted list); the stored form of a batch."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = sorted(set(value))
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Selection:
        """The inverse of as_dict; unknown keys are an error (a typo must not widen a selection silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SelectionError(f"unknown selection keys {unknown}; use some of {sorted(known)}")
        values = dict(data)
        for name in ("cleaned_from", "cleaned_to"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        if values.get("doc_ids") is not None:
            values["doc_ids"] = tuple(sorted(set(values["doc_ids"])))
        return cls(**values)


def read_doc_ids(path: Path) -> tuple[str, ...]:
    """Document ids from a file, one per line (blank lines and `#` comments skipped), sorted and unique."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SelectionError(
            f"{path}: cannot read the doc id file ({exc}); give a file with one doc id per line"
        ) from exc
    ids = {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
    if not ids:
        raise SelectionError(f"{path}: no doc ids in it; give one doc id per line")
    return tuple(sorted(ids))
