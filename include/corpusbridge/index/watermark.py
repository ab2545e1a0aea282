"""The per-backend index watermark: the newest clean change a backend has indexed (`index_state`).

A run indexes the clean changes after its backend's watermark (all of them for a rebuild) up to the newest one
when it starts, and moves the watermark there only when it succeeds.
"""

from __future__ import annotations

from typing import Literal, LiteralString

import psycopg

from corpusbridge.index import statements

Backend = Literal["postgres", "elasticsearch"]
BACKENDS: tuple[Backend, ...] = ("postgres", "elasticsearch")


def bounds(conn: psycopg.Connection, backend: Backend, *, rebuild: bool) -> tuple[int, int]:
    """(from_seq, to_seq) of a run: after the watermark (0 for a rebuild), up to the newest clean change."""
    watermark = _scalar(conn, statements.WATERMARK, (backend,))
    newest = _scalar(conn, statements.NEWEST_CHANGE, ())
    from_seq = 0 if rebuild else watermark
    return from_seq, max(newest, from_seq)


def advance(conn: psycopg.Connection, backend: str, to_seq: int, index_name: str | None, docs_indexed: int) -> None:
    """Move `backend`'s watermark to `to_seq` (in the caller's transaction)."""
    conn.execute(statements.ADVANCE_WATERMARK, (backend, to_seq, index_name, docs_indexed))


def _scalar(conn: psycopg.Connection, query: LiteralString, params: tuple) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])
