"""Raw document rows for the sanitize/index/search tests, written the way ingestion writes them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psycopg

_COLUMNS = (
    "doc_id, source_format, source_file, source_mtime_ns, source_ordinal, title, abstract, full_text, authors,"
    " year, venue, language, raw, content_hash, last_run_id"
)


def raw_row(doc_id: str, **fields: Any) -> dict[str, Any]:
    """A raw_documents row with defaults; `fields` override (title, abstract, authors, year, ...)."""
    row = {
        "doc_id": doc_id,
        "source_format": "jsonl",
        "source_file": "test.jsonl",
        "source_mtime_ns": 0,
        "source_ordinal": 0,
        "title": None,
        "abstract": None,
        "full_text": None,
        "authors": [],
        "year": None,
        "venue": None,
        "language": None,
        "raw": {},
        "last_run_id": 1,
    }
    row.update(fields)
    return row


def put_raw(conn: psycopg.Connection, *rows: dict[str, Any]) -> None:
    """Insert or change raw documents; like ingestion, `change_seq` is bumped only when the content changes."""
    for row in rows:
        content = json.dumps({k: v for k, v in row.items() if k not in ("last_run_id",)}, sort_keys=True)
        values = {
            **row,
            "authors": json.dumps(row["authors"]),
            "raw": json.dumps(row["raw"]),
            "content_hash": hashlib.sha256(content.encode()).hexdigest(),
        }
        conn.execute(
            f"INSERT INTO raw_documents ({_COLUMNS}) VALUES (%(doc_id)s, %(source_format)s, %(source_file)s,"
            " %(source_mtime_ns)s, %(source_ordinal)s, %(title)s, %(abstract)s, %(full_text)s, %(authors)s,"
            " %(year)s, %(venue)s, %(language)s, %(raw)s, %(content_hash)s, %(last_run_id)s)"
            " ON CONFLICT (doc_id) DO UPDATE SET title = EXCLUDED.title, abstract = EXCLUDED.abstract,"
            " full_text = EXCLUDED.full_text, authors = EXCLUDED.authors, year = EXCLUDED.year,"
            " venue = EXCLUDED.venue, language = EXCLUDED.language, raw = EXCLUDED.raw,"
            " content_hash = EXCLUDED.content_hash, change_seq = nextval('raw_document_change_seq')"
            " WHERE raw_documents.content_hash <> EXCLUDED.content_hash",
            values,
        )
    conn.commit()


def table_writes(conn: psycopg.Connection, *tables: str) -> int:
    """Rows inserted + updated + deleted so far in `tables`, this session's pending statistics flushed first."""
    conn.commit()
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.commit()
    conn.execute("SELECT pg_stat_clear_snapshot()")
    total = conn.execute(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables WHERE relname = ANY(%s)",
        (list(tables),),
    ).fetchone()[0]
    conn.commit()
    return int(total)
