"""Reading the rejects: which documents sanitizing refused, and why (the `corpusbridge sanitize --rejects` listing)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg

from corpusbridge.sanitize import statements


@dataclass(frozen=True)
class RejectEntry:
    doc_id: str
    reason: str
    detail: str | None
    run_id: int

    def as_dict(self) -> dict:
        return asdict(self)


def latest_rejects(conn: psycopg.Connection, limit: int = 20) -> list[RejectEntry]:
    """The `limit` most recently rejected documents, newest first."""
    rows = conn.execute(statements.LATEST_REJECTS, (limit,)).fetchall()
    return [RejectEntry(*row) for row in rows]
