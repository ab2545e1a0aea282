"""What runs inside a parser process: one database connection per process, chunks of files per call."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import make_conninfo

from corpusbridge.ingest.staging import FileResult, FileTask, stage_files
from corpusbridge.processes import reset_inherited_signals

# Files per task sent to a worker, and per staging COPY: each COPY and transaction has a fixed cost that 32-file
# chunks still paid visibly on small files (128 measured ~10% faster on 20k documents; bench/ingest.py).
CHUNK_FILES = 128

_conn: psycopg.Connection | None = None


def conninfo_of(conn: psycopg.Connection) -> str:
    """A conninfo string workers can use to open their own connection to the same database."""
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    return make_conninfo(**params)


def init(conninfo: str) -> None:
    global _conn
    reset_inherited_signals()
    _conn = psycopg.connect(conninfo)


def stage_chunk(tasks: list[FileTask], record_cap: int) -> list[FileResult]:
    assert _conn is not None, "worker initializer did not run"
    return stage_files(_conn, tasks, record_cap)
