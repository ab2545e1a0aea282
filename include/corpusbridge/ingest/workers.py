"""What runs inside a parser process: one database connection per process, whole chunks of files per call.

Workers are spawned (`corpusbridge.processes.worker_pool`), so this connection is the only one they hold.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import make_conninfo

from corpusbridge.ingest.chunk import ChunkOutcome, ingest_chunk
from corpusbridge.ingest.copy_in import FileTask, prepare_session

# Files per chunk: each chunk's COPY, merge statements and commit have a fixed cost that 32-file chunks still
# paid visibly on small files (128 measured ~10% faster on 20k documents; bench/ingest.py).
CHUNK_FILES = 128

_conn: psycopg.Connection | None = None


def conninfo_of(conn: psycopg.Connection) -> str:
    """A conninfo string workers can use to open their own connection to the same database."""
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    return make_conninfo(**params)


def open_worker_connection(conninfo: str) -> psycopg.Connection:
    conn = psycopg.connect(conninfo)
    prepare_session(conn)
    return conn


def init(conninfo: str) -> None:
    """Pool initializer (after `processes.start_worker`): this worker's own connection and chunk table."""
    global _conn
    _conn = open_worker_connection(conninfo)


def run_chunk(run_id: int, tasks: list[FileTask], record_cap: int) -> ChunkOutcome:
    assert _conn is not None, "worker initializer did not run"
    return ingest_chunk(_conn, run_id, tasks, record_cap)
