"""Reading the quarantine: what was not loaded, where it came from, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg


@dataclass(frozen=True)
class QuarantineEntry:
    quarantine_id: int
    run_id: int
    source_file: str
    locator: str
    error_class: str
    message: str
    raw_preview: str
    raw_bytes: int
    raw_truncated: bool

    def as_dict(self) -> dict:
        return asdict(self)


def list_quarantine(
    conn: psycopg.Connection, limit: int = 100, error_class: str | None = None
) -> list[QuarantineEntry]:
    rows = conn.execute(
        """SELECT quarantine_id, run_id, source_file, locator, error_class, message,
                  raw, raw_truncated
           FROM quarantine WHERE %(cls)s::text IS NULL OR error_class = %(cls)s
           ORDER BY quarantine_id LIMIT %(limit)s""",
        {"cls": error_class, "limit": limit},
    ).fetchall()
    return [
        QuarantineEntry(qid, run, path, loc, cls, msg, _preview(raw), len(raw or b""), trunc)
        for qid, run, path, loc, cls, msg, raw, trunc in rows
    ]


def _preview(raw: bytes | None, width: int = 200) -> str:
    return (raw or b"")[:width].decode("utf-8", "replace")
